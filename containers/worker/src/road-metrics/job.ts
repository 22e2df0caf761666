import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Client } from 'pg';
import { DEFAULT_MAX_REJECT_RATIO, PgQuery, processQuery } from '../engine/postgres';
import { Logger, silentLogger } from '../log';
import type { AggregateDefectsResult } from '../operations/aggregate-defects';
import { getJson, PartWriter, putJson } from '../output';
import { DEFAULT_REPORT_DAYS, renderReportHtml, reportDataOf } from './dashboard/render';
import { DayPeriod } from './period';
import { buildTrend, DailyResult, Trend } from './trend';
import { replaceDay } from './writeback';

/**
 * The nightly road-metrics job: for each UTC day, the defects of that day are read from PostgreSQL
 * through the engine's database source and `aggregate-defects`, written back to PostgreSQL (one
 * transaction per day) and to S3 under a dated key; `latest.json` points at the newest day.
 * Order matters: nothing is written before the whole day has been read, and the `latest` pointer moves
 * last, so a failure never leaves a partial day that looks current.
 */
export const DEFAULT_RESULTS_PREFIX = 'results/road-defects';

/** The columns of the road_defects table the platform documents (docs/workloads/road-metrics.md). */
export const DEFAULT_DEFECTS_QUERY: PgQuery = {
  table: 'road_defects',
  keyColumn: 'id',
  timeColumn: 'detected_at',
  columns: {
    segmentId: 'segment_id',
    severity: 'severity',
    lat: 'lat',
    lon: 'lon',
    detectedAt: 'detected_at',
    depthMm: 'depth_mm',
  },
};

export interface ResultKeys {
  daily: string;
  rejects: string;
  latest: string;
  /** The dashboard of the day (HTML) and of the newest day. */
  dashboard: string;
  latestDashboard: string;
}

export function resultKeys(prefix: string, date: string): ResultKeys {
  return {
    daily: `${prefix}/daily/${date}.json`,
    rejects: `${prefix}/daily/${date}.rejects.jsonl`,
    latest: `${prefix}/latest.json`,
    dashboard: `${prefix}/dashboard/${date}.html`,
    latestDashboard: `${prefix}/dashboard/latest.html`,
  };
}

/** The document at results/road-defects/daily/YYYY-MM-DD.json. */
export interface DailyDocument {
  kind: 'road-defects-daily';
  date: string;
  from: string;
  to: string;
  job: { jobId: string; startedAt: string; durationMs: number; records: number; rejected: number; status: 'succeeded' };
  result: AggregateDefectsResult;
}

export interface LatestPointer {
  date: string;
  key: string;
  updatedAt: string;
}

export interface RoadMetricsDeps {
  db: Client;
  s3: S3Client;
  bucket: string;
  jobId: string;
  prefix?: string;
  query?: PgQuery;
  maxRejectRatio?: number;
  /** Skip the PostgreSQL write-back (results to S3 only). @default true */
  writeBack?: boolean;
  /** Publish the day's dashboard page next to the results. @default true */
  dashboard?: boolean;
  log?: Logger;
}

export interface DayOutcome {
  date: string;
  status: 'succeeded' | 'failed';
  message?: string;
  records: number;
  rejected: number;
  key?: string;
  rejectsKey: string;
  /** The published dashboard page of the day. */
  dashboardKey?: string;
}

export async function runDay(day: DayPeriod, deps: RoadMetricsDeps): Promise<DayOutcome> {
  const prefix = deps.prefix ?? DEFAULT_RESULTS_PREFIX;
  const keys = resultKeys(prefix, day.date);
  const log = (deps.log ?? silentLogger).child({ date: day.date });
  const started = new Date();
  const rejects = new PartWriter(deps.s3, deps.bucket, keys.rejects, { contentType: 'application/x-ndjson' });
  let run;
  try {
    run = await processQuery('aggregate-defects', deps.db, deps.query ?? DEFAULT_DEFECTS_QUERY, day, {
      onReject: (line) => rejects.write(line),
      afterBatch: () => rejects.flushIfFull(),
    });
  } catch (err) {
    await rejects.abort();
    throw err;
  }
  await rejects.complete();
  const result = run.document as unknown as AggregateDefectsResult;
  const total = run.records + run.rejected;
  const maxRatio = deps.maxRejectRatio ?? DEFAULT_MAX_REJECT_RATIO;
  const base = { date: day.date, records: run.records, rejected: run.rejected, rejectsKey: keys.rejects };
  if (total > 0 && run.rejected / total > maxRatio) {
    const message =
      `${day.date}: ${run.rejected} of ${total} rows rejected (${((run.rejected / total) * 100).toFixed(2)}%), more than ` +
      `MAX_REJECT_RATIO ${maxRatio}; nothing written back; see s3://${deps.bucket}/${keys.rejects}`;
    log.error(message);
    return { ...base, status: 'failed', message };
  }
  if (deps.writeBack ?? true) await replaceDay(deps.db, day.date, result, deps.jobId);
  const doc: DailyDocument = {
    kind: 'road-defects-daily',
    date: day.date,
    from: day.from.toISOString(),
    to: day.to.toISOString(),
    job: {
      jobId: deps.jobId,
      startedAt: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      records: run.records,
      rejected: run.rejected,
      status: 'succeeded',
    },
    result,
  };
  await putJson(deps.s3, deps.bucket, keys.daily, doc);
  const latest = await getJson<LatestPointer>(deps.s3, deps.bucket, keys.latest);
  // A backfill of older days never moves `latest` backwards.
  const newest = !latest || latest.date <= day.date;
  if (newest) {
    await putJson(deps.s3, deps.bucket, keys.latest, { date: day.date, key: keys.daily, updatedAt: new Date().toISOString() });
  }
  const dashboardKey = deps.dashboard === false ? undefined : await publishDashboard(deps.s3, deps.bucket, prefix, day.date, newest);
  log.info('day done', { records: run.records, rejected: run.rejected, key: keys.daily, dashboard: dashboardKey });
  return { ...base, status: 'succeeded', key: keys.daily, dashboardKey };
}

/**
 * Publishes the dashboard of `date` (the page `batchctl report` writes: the day's heatmap and severity
 * table, the trend and jobs of the days up to it) to `<prefix>/dashboard/<date>.html` and, when `date`
 * is the newest day, to `<prefix>/dashboard/latest.html`. It is private like every other object in the
 * bucket: read it with `batchctl report --url` (a presigned URL) or an S3 download.
 */
export async function publishDashboard(s3: S3Client, bucket: string, prefix: string, date: string, newest: boolean): Promise<string> {
  const keys = resultKeys(prefix, date);
  const docs = await loadDailyDocuments(s3, bucket, { prefix, days: DEFAULT_REPORT_DAYS, through: date });
  const data = reportDataOf(docs, date);
  if (!data) throw new Error(`no daily result for ${date} under s3://${bucket}/${prefix}/daily/ to render the dashboard from`);
  const html = renderReportHtml(data);
  const put = (key: string) =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: html,
        ContentType: 'text/html; charset=utf-8',
        // The page changes when a day is rerun; a browser holding a presigned URL should not keep an old one.
        CacheControl: 'no-cache',
      }),
    );
  await put(keys.dashboard);
  if (newest) await put(keys.latestDashboard);
  return keys.dashboard;
}

/** Runs the days in order; stops at the first failed day (later days would hide it behind `latest`). */
export async function runDays(days: readonly DayPeriod[], deps: RoadMetricsDeps): Promise<DayOutcome[]> {
  const outcomes: DayOutcome[] = [];
  for (const day of days) {
    const outcome = await runDay(day, deps);
    outcomes.push(outcome);
    if (outcome.status === 'failed') break;
  }
  return outcomes;
}

/** Every daily result document under the prefix, oldest first (at most `limit`, the newest ones). */
export async function listDailyKeys(s3: S3Client, bucket: string, prefix: string = DEFAULT_RESULTS_PREFIX): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/daily/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key && /\/daily\/\d{4}-\d{2}-\d{2}\.json$/.test(o.Key)) keys.push(o.Key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function loadDailyDocuments(
  s3: S3Client,
  bucket: string,
  options: { prefix?: string; days?: number; through?: string } = {},
): Promise<DailyDocument[]> {
  let keys = await listDailyKeys(s3, bucket, options.prefix);
  if (options.through) keys = keys.filter((k) => k.slice(-15, -5) <= options.through!);
  if (options.days !== undefined) keys = keys.slice(-options.days);
  const docs: DailyDocument[] = [];
  for (const key of keys) {
    const doc = await getJson<DailyDocument>(s3, bucket, key);
    if (!doc || doc.kind !== 'road-defects-daily') throw new Error(`s3://${bucket}/${key} is not a road-defects daily result`);
    docs.push(doc);
  }
  return docs;
}

/** The trend operation: merges the last N daily results into per-segment series and stores it. */
export async function writeTrend(
  s3: S3Client,
  bucket: string,
  options: { prefix?: string; days: number; through?: string },
): Promise<{ key: string; trend: Trend }> {
  const prefix = options.prefix ?? DEFAULT_RESULTS_PREFIX;
  const docs = await loadDailyDocuments(s3, bucket, { prefix, days: options.days, through: options.through });
  if (docs.length === 0) throw new Error(`no daily results under s3://${bucket}/${prefix}/daily/ to build a trend from`);
  const trend = buildTrend(docs.map((d): DailyResult => ({ date: d.date, result: d.result })));
  const key = `${prefix}/trend/${trend.days[trend.days.length - 1]}.json`;
  await putJson(s3, bucket, key, trend);
  return { key, trend };
}
