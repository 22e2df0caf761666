import { DASHBOARD_SCRIPT, DASHBOARD_STYLE } from './assets';

/**
 * The road-metrics dashboard: one static, self-contained HTML page (inline CSS and JS, a Content
 * Security Policy that forbids any network access) rendered from the daily results the road-metrics job
 * writes (results/road-defects/daily/YYYY-MM-DD.json). The heatmap and the severity table show the
 * chosen day; the trend and the jobs panel show the days up to it.
 *
 * Pure (no SDK, no file system): the road-metrics job publishes it to the output bucket and
 * `batchctl report` / `npm start` (lib/client/report) write it to a file. It lives here, with the
 * worker, because the worker image is built from containers/worker alone; lib/client re-exports it.
 */
export const DEFAULT_REPORT_DAYS = 30;

/** The fields of a daily result document the page reads (written by containers/worker/src/road-metrics). */
export interface DailyReportInput {
  kind: 'road-defects-daily';
  date: string;
  job: { jobId: string; startedAt: string; durationMs: number; records: number; rejected: number; status: string };
  result: {
    records: number;
    rejected: number;
    segments: Record<string, { count: number; severity: Record<'low' | 'medium' | 'high' | 'critical', number>; depthMm: { mean: number | null; max: number | null } }>;
    heatmap: { cellDeg: number; cells: Record<string, number> };
  };
}

export interface ReportData {
  date: string;
  /** What the heatmap and the table cover when it is not one day (a local run over its whole input). */
  scope?: string;
  generatedAt: string;
  day: DailyReportInput;
  history: { date: string; records: number; rejected: number; job: DailyReportInput['job'] }[];
}

/** The report of `date` from daily results (any order, any days); undefined when `date` has none. */
export function reportDataOf(docs: readonly DailyReportInput[], date: string, days = DEFAULT_REPORT_DAYS, now: Date = new Date()): ReportData | undefined {
  const sorted = [...docs].filter((d) => d.date <= date).sort((a, b) => (a.date < b.date ? -1 : 1)).slice(-days);
  const day = sorted.find((d) => d.date === date);
  if (!day) return undefined;
  return {
    date,
    generatedAt: now.toISOString(),
    day,
    history: sorted.map((d) => ({ date: d.date, records: d.result.records, rejected: d.result.rejected, job: d.job })),
  };
}

/** What `buildRunReportData` needs from a run of `aggregate-defects` (the local runner's result file). */
export interface RunReportInput {
  runId: string;
  status: string;
  startedAt: string;
  durationMs: number;
  result: DailyReportInput['result'] & { days?: Record<string, number> };
}

/**
 * The dashboard of one run over a whole input (`npm start`): the heatmap and the severity table show
 * the whole run, the trend one point per day of `detectedAt` in it (`result.days`), and the jobs panel
 * the run once per day it covered. Rejected rows have no trustworthy day, so they count on the summary
 * line only.
 */
export function buildRunReportData(run: RunReportInput): ReportData {
  const r = run.result;
  if (!r || typeof r.records !== 'number' || !r.heatmap || !r.segments) {
    throw new Error(`run ${run.runId}: the result is not an aggregate-defects result (records, segments, heatmap)`);
  }
  const days = Object.entries(r.days ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const last = days.length > 0 ? days[days.length - 1][0] : run.startedAt.slice(0, 10);
  const job = (records: number, rejected: number): DailyReportInput['job'] => ({
    jobId: run.runId,
    startedAt: run.startedAt,
    durationMs: run.durationMs,
    records,
    rejected,
    status: run.status.toLowerCase(),
  });
  return {
    date: last,
    scope: days.length > 1 ? `run ${run.runId}, ${days[0][0]} to ${last}` : `run ${run.runId}`,
    generatedAt: new Date().toISOString(),
    day: { kind: 'road-defects-daily', date: last, job: job(r.records, r.rejected), result: r },
    history: days.map(([date, count]) => ({ date, records: count, rejected: 0, job: job(count, 0) })),
  };
}

/** JSON safe inside <script>: no "</script>", no "<!--", no U+2028/9 surprises. */
function scriptJson(data: unknown): string {
  return JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderReportHtml(data: ReportData): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Road defects ${escapeHtml(data.scope ?? data.date)}</title>
<style>${DASHBOARD_STYLE}</style>
</head>
<body>
<header><h1>Road defects — <span id="report-date">${escapeHtml(data.scope ?? data.date)}</span></h1><p id="summary"></p></header>
<main>
<section class="panel"><h2>Heatmap</h2><div id="heatmap"></div><div id="legend"></div><div id="tooltip" role="status">hover a cell</div></section>
<section class="panel"><h2>Daily trend</h2><div id="trend"></div></section>
<section class="panel wide"><h2>Segments by severity</h2><table id="segments"><thead><tr>
<th data-key="id">segment</th><th data-key="count">defects</th><th data-key="low">low</th><th data-key="medium">medium</th>
<th data-key="high">high</th><th data-key="critical">critical</th><th data-key="mean">mean depth mm</th><th data-key="max">max depth mm</th>
</tr></thead><tbody></tbody></table></section>
<section class="panel wide"><h2>Jobs</h2><table id="jobs"><thead><tr><th>day</th><th>job</th><th>status</th><th>duration</th><th>records</th><th>rejects</th></tr></thead><tbody></tbody></table></section>
</main>
<script id="report-data" type="application/json">${scriptJson(data)}</script>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}
