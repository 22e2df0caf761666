import * as fs from 'fs';
import { buildRunReportData, renderReportHtml, RunReportInput } from '../client/report/road-report';
import type { LocalRunResult } from './run-local';

/**
 * The road-metrics dashboard of a local run (`npm start`): the same renderer `batchctl report` uses,
 * fed with the run's result file instead of daily results. Writes `file` (to a temporary name first,
 * so a failure never leaves a half-written page) and returns its path.
 */
export function writeRunDashboard(run: LocalRunResult, file: string, now: Date = new Date()): string {
  if (run.status !== 'SUCCEEDED' || !run.outputPath) {
    throw new Error(`run ${run.runId} ended ${run.status}${run.outputPath ? '' : ' without a result'}; no dashboard to render`);
  }
  const result = JSON.parse(fs.readFileSync(run.outputPath, 'utf8')) as RunReportInput['result'] & { operation?: string };
  if (result.operation !== 'aggregate-defects') {
    throw new Error(`${run.outputPath}: operation "${String(result.operation)}" has no dashboard; only aggregate-defects does`);
  }
  const html = renderReportHtml(
    buildRunReportData({
      runId: run.runId,
      status: run.status,
      startedAt: new Date(now.getTime() - run.durationMs).toISOString(),
      durationMs: run.durationMs,
      result,
    }),
  );
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, file);
  return file;
}
