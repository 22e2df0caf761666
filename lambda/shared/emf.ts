export { emfRecord, METRIC_NAMESPACE } from '../../containers/worker/src/emf-record';
export type { EmfMetric, EmfRecordInput, EmfUnit } from '../../containers/worker/src/emf-record';

/** Last path segment of an ARN (`...:job-queue/high-priority` -> `high-priority`); names pass through. */
export function nameFromArn(arnOrName: string): string {
  const slash = arnOrName.lastIndexOf('/');
  return slash >= 0 ? arnOrName.slice(slash + 1) : arnOrName;
}

/** Job definition name without its revision (`...:job-definition/worker:7` -> `worker`). */
export function jobDefinitionName(arnOrName: string): string {
  const name = nameFromArn(arnOrName);
  const colon = name.lastIndexOf(':');
  return colon >= 0 && /^\d+$/.test(name.slice(colon + 1)) ? name.slice(0, colon) : name;
}
