import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Command, InvalidArgumentError } from 'commander';
import * as fs from 'fs';
import {
  buildReportData,
  DEFAULT_REPORT_DAYS,
  DEFAULT_RESULTS_PREFIX,
  loadDailyFromDir,
  loadDailyFromS3,
  renderReportHtml,
} from '../report/road-report';
import { InvalidRequestError, ResultNotFoundError } from '../errors';
import { CliContext, GlobalOptions, intArg } from './context';

function dateArg(value: string): string {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : NaN;
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) {
    throw new InvalidArgumentError(`expected a calendar date YYYY-MM-DD, got "${value}"`);
  }
  return value;
}

/** Longest presigned URL SigV4 allows (7 days); the default is one hour. */
const MAX_URL_SECONDS = 7 * 24 * 3600;

export function register(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description('render the road-metrics dashboard (one self-contained HTML file) from the daily results, or --url: a link to the page the nightly job published')
    .option('--date <YYYY-MM-DD>', 'the day the heatmap and the severity table show (with --url: default the newest day)', dateArg)
    .option('--out <file>', 'HTML file to write')
    .option('--days <n>', `days of history in the trend and jobs panels (default ${DEFAULT_REPORT_DAYS})`, intArg(1))
    .option('--prefix <prefix>', `results prefix in the output bucket (default ${DEFAULT_RESULTS_PREFIX})`)
    .option('--results-dir <dir>', "a local run's results directory instead of S3 (<dir>/daily/YYYY-MM-DD.json)")
    .option('--url', 'print a presigned HTTPS URL of the published page (<prefix>/dashboard/<date|latest>.html) instead of rendering one')
    .option('--expires <seconds>', `lifetime of the --url link (default 3600, at most ${MAX_URL_SECONDS})`, intArg(1))
    .action(
      async (
        opts: { date?: string; out?: string; days?: number; prefix?: string; resultsDir?: string; url?: boolean; expires?: number },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        const outputBucket = () => {
          const bucket = g.outputBucket ?? ctx.io.env.BATCH_OUTPUT_BUCKET ?? g.inputBucket ?? ctx.io.env.BATCH_INPUT_BUCKET;
          if (!bucket) {
            throw new InvalidRequestError('invalid report request', [
              { field: '--output-bucket', message: `give --output-bucket (or BATCH_OUTPUT_BUCKET)${opts.url ? '' : ', or --results-dir'}` },
            ]);
          }
          return bucket;
        };
        const s3 = () => new S3Client({ region: g.region, forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' });
        if (opts.url) {
          if (opts.out || opts.resultsDir || opts.days !== undefined) {
            throw new InvalidRequestError('invalid report request', [
              { field: '--url', message: 'prints a link to the published page; it takes no --out, --results-dir or --days' },
            ]);
          }
          const expires = opts.expires ?? 3600;
          if (expires > MAX_URL_SECONDS) {
            throw new InvalidRequestError('invalid report request', [
              { field: '--expires', message: `${expires} seconds is too long; allowed: 1 to ${MAX_URL_SECONDS}`, value: expires },
            ]);
          }
          const bucket = outputBucket();
          const key = `${opts.prefix ?? DEFAULT_RESULTS_PREFIX}/dashboard/${opts.date ?? 'latest'}.html`;
          const client = s3();
          try {
            await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
          } catch (err) {
            const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
            if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) {
              throw new ResultNotFoundError(`no published dashboard at s3://${bucket}/${key}; the road-metrics job publishes one per day it runs`);
            }
            throw err;
          }
          const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expires });
          ctx.print(cmd, { url, bucket, key, expiresIn: expires }, () => [url]);
          return;
        }
        for (const [field, value] of [['--date', opts.date], ['--out', opts.out]] as const) {
          if (!value) {
            throw new InvalidRequestError('invalid report request', [
              { field, message: 'required to render a page (or give --url for the link to the published one)' },
            ]);
          }
        }
        const date = opts.date!;
        const out = opts.out!;
        let docs;
        let from: string;
        if (opts.resultsDir) {
          docs = loadDailyFromDir(opts.resultsDir, { date, days: opts.days });
          from = opts.resultsDir;
        } else {
          const bucket = outputBucket();
          docs = await loadDailyFromS3(s3(), bucket, { prefix: opts.prefix, date, days: opts.days });
          from = `s3://${bucket}/${opts.prefix ?? DEFAULT_RESULTS_PREFIX}/daily/`;
        }
        const data = buildReportData(docs, date, opts.days);
        fs.writeFileSync(out, renderReportHtml(data));
        ctx.print(cmd, { out, date, days: data.history.length, from }, () => [
          `wrote ${out} (${date}, ${data.history.length} day(s) of history from ${from})`,
        ]);
      },
    );
}
