import { S3Client } from '@aws-sdk/client-s3';
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
import { CliContext, GlobalOptions, intArg } from './context';

function dateArg(value: string): string {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : NaN;
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) {
    throw new InvalidArgumentError(`expected a calendar date YYYY-MM-DD, got "${value}"`);
  }
  return value;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description('render the road-metrics dashboard (one self-contained HTML file) from the daily results')
    .requiredOption('--date <YYYY-MM-DD>', 'the day the heatmap and the severity table show', dateArg)
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--days <n>', `days of history in the trend and jobs panels (default ${DEFAULT_REPORT_DAYS})`, intArg(1))
    .option('--prefix <prefix>', `results prefix in the output bucket (default ${DEFAULT_RESULTS_PREFIX})`)
    .option('--results-dir <dir>', "a local run's results directory instead of S3 (<dir>/daily/YYYY-MM-DD.json)")
    .action(async (opts: { date: string; out: string; days?: number; prefix?: string; resultsDir?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      let docs;
      let from: string;
      if (opts.resultsDir) {
        docs = loadDailyFromDir(opts.resultsDir, { date: opts.date, days: opts.days });
        from = opts.resultsDir;
      } else {
        const bucket = g.outputBucket ?? ctx.io.env.BATCH_OUTPUT_BUCKET ?? g.inputBucket ?? ctx.io.env.BATCH_INPUT_BUCKET;
        if (!bucket) throw new InvalidArgumentError('give --output-bucket (or BATCH_OUTPUT_BUCKET), or --results-dir');
        const s3 = new S3Client({ region: g.region, forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' });
        docs = await loadDailyFromS3(s3, bucket, { prefix: opts.prefix, date: opts.date, days: opts.days });
        from = `s3://${bucket}/${opts.prefix ?? DEFAULT_RESULTS_PREFIX}/daily/`;
      }
      const data = buildReportData(docs, opts.date, opts.days);
      fs.writeFileSync(opts.out, renderReportHtml(data));
      ctx.print(cmd, { out: opts.out, date: opts.date, days: data.history.length, from }, () => [
        `wrote ${opts.out} (${opts.date}, ${data.history.length} day(s) of history from ${from})`,
      ]);
    });
}
