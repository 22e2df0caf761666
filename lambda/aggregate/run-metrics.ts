export {
  CHUNK_DONE_METRICS,
  CHUNK_FAILED_METRIC,
  chunkDoneLine,
  chunkFailedLine,
  RUN_DIMENSION_SETS,
  RUN_METRIC_NAMESPACE,
  runDimensionValues,
  runMetricsLine,
} from '../../containers/worker/src/run-metrics';

/**
 * On Lambda the EMF line goes to stdout (CloudWatch Logs turns it into metrics); elsewhere (the local
 * runner, tests) it is dropped unless a caller passes its own `emit`.
 */
export function defaultEmit(line: string): void {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) console.log(line);
}
