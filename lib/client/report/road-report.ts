import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import * as fs from 'fs';
import * as path from 'path';
import {
  DailyReportInput,
  DEFAULT_REPORT_DAYS,
  ReportData,
  reportDataOf,
} from '../../../containers/worker/src/road-metrics/dashboard/render';
import { ResultNotFoundError } from '../errors';

/**
 * `batchctl report` and `npm start`: load the road-metrics daily results (S3 or a local directory) and
 * render the dashboard. The renderer itself is the worker's (containers/worker/src/road-metrics/dashboard),
 * so the page the nightly job publishes and the page written here are the same.
 */
export { buildRunReportData, DEFAULT_REPORT_DAYS, renderReportHtml } from '../../../containers/worker/src/road-metrics/dashboard/render';
export type { DailyReportInput, ReportData, RunReportInput } from '../../../containers/worker/src/road-metrics/dashboard/render';

export const DEFAULT_RESULTS_PREFIX = 'results/road-defects';

const DAILY_KEY = /(^|\/)daily\/(\d{4}-\d{2}-\d{2})\.json$/;

function checkDaily(doc: unknown, where: string): DailyReportInput {
  const d = doc as DailyReportInput;
  if (!d || d.kind !== 'road-defects-daily' || typeof d.date !== 'string' || !d.result?.heatmap) {
    throw new Error(`${where} is not a road-defects daily result (kind "road-defects-daily")`);
  }
  return d;
}

export function buildReportData(docs: readonly DailyReportInput[], date: string, days = DEFAULT_REPORT_DAYS): ReportData {
  const data = reportDataOf(docs, date, days);
  if (!data) throw new ResultNotFoundError(`no daily result for ${date}; run the road-metrics job for that day first`);
  return data;
}

/** Daily results from S3, the newest `days` up to and including `date`. */
export async function loadDailyFromS3(
  s3: S3Client,
  bucket: string,
  options: { prefix?: string; date: string; days?: number },
): Promise<DailyReportInput[]> {
  const prefix = options.prefix ?? DEFAULT_RESULTS_PREFIX;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/daily/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const m = o.Key ? DAILY_KEY.exec(o.Key) : null;
      if (m && m[2] <= options.date) keys.push(o.Key!);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const wanted = keys.sort().slice(-(options.days ?? DEFAULT_REPORT_DAYS));
  const docs: DailyReportInput[] = [];
  for (const key of wanted) {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    docs.push(checkDaily(JSON.parse(await res.Body!.transformToString('utf8')), `s3://${bucket}/${key}`));
  }
  return docs;
}

/** Daily results of a local run: `<dir>/daily/YYYY-MM-DD.json`. */
export function loadDailyFromDir(dir: string, options: { date: string; days?: number }): DailyReportInput[] {
  const daily = path.join(dir, 'daily');
  if (!fs.existsSync(daily)) throw new Error(`${daily} does not exist; expected the results of a road-metrics run`);
  return fs
    .readdirSync(daily)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f) && f.slice(0, 10) <= options.date)
    .sort()
    .slice(-(options.days ?? DEFAULT_REPORT_DAYS))
    .map((f) => checkDaily(JSON.parse(fs.readFileSync(path.join(daily, f), 'utf8')), path.join(daily, f)));
}
