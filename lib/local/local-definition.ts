import { AslDefinition, AslState } from './asl';
import { STATE_NAMES } from '../workflow/chunked-processing-workflow';

/** The state the local runner inserts to read the manifest before the map (no ItemReader locally). */
export const LOAD_MANIFEST_STATE = 'LoadManifestLocally';
/** Where the loaded manifest lines go in the state, for the inline map's ItemsPath. */
export const LOCAL_ITEMS_PATH = '$.localManifestItems';
/** Task timeout given to tasks that set none (the local interpreter would otherwise stop them after 60 s). */
export const LOCAL_TASK_TIMEOUT_SECONDS = 24 * 3600;

/** Distributed-Map-only fields the local interpreter has no equivalent for. */
const DISTRIBUTED_ONLY = ['ItemReader', 'ToleratedFailurePercentage', 'ToleratedFailurePercentagePath', 'ToleratedFailureCount', 'ToleratedFailureCountPath', 'Label', 'ResultWriter', 'ItemBatcher'];

/**
 * The one local adaptation of the synthesized definition. The ASL interpreter runs inline Maps over
 * an array in the state, not Distributed Maps that read S3, so:
 * 1. a Task `LoadManifestLocally` is inserted after PlanChunks; the runner backs it with a read of
 *    `runs/{runId}/manifest.jsonl` from the local S3 and puts the lines at `$.localManifestItems`;
 * 2. ProcessChunks drops ItemReader (and the other Distributed-only fields: tolerated failures,
 *    label, result writer, batcher), gets `ItemsPath: $.localManifestItems` and runs INLINE;
 * 3. tasks without TimeoutSeconds get a day (the interpreter's default is 60 s; Step Functions has none);
 * 4. `"Body.$": "States.JsonToString($.x)"` becomes `"Body.$": "$.x"` and the local putObject handler
 *    serializes it: aws-local-stepfunctions 3.0 strips every backslash from string results of
 *    intrinsic functions, which breaks JSON whose strings hold quotes (a Lambda or Batch error cause).
 * Everything else (ItemSelector, MaxConcurrency, Choice, retries, catches, ResultPath null) is unchanged;
 * ResultPath null also drops the loaded items again after the map. Tolerated failures need no
 * equivalent: each chunk catches its own failure, and the aggregator applies the percentage.
 */
export function toLocalDefinition(definition: AslDefinition): AslDefinition {
  const copy = JSON.parse(JSON.stringify(definition)) as AslDefinition;
  const plan = copy.States[STATE_NAMES.plan];
  const map = copy.States[STATE_NAMES.map];
  if (!plan || !map || map.Type !== 'Map' || plan.Next !== STATE_NAMES.map) {
    throw new Error(`the workflow definition no longer has ${STATE_NAMES.plan} -> ${STATE_NAMES.map}; update toLocalDefinition`);
  }
  plan.Next = LOAD_MANIFEST_STATE;
  copy.States[LOAD_MANIFEST_STATE] = {
    Type: 'Task',
    Comment: 'Local run only: reads the manifest the Distributed Map ItemReader reads on AWS',
    Resource: 'arn:aws:states:::s3:getObject',
    Parameters: { 'Bucket.$': '$.plan.manifestBucket', 'Key.$': '$.plan.manifestKey' },
    ResultPath: LOCAL_ITEMS_PATH,
    TimeoutSeconds: LOCAL_TASK_TIMEOUT_SECONDS,
    Next: STATE_NAMES.map,
  };
  for (const field of DISTRIBUTED_ONLY) delete map[field];
  map.ItemsPath = LOCAL_ITEMS_PATH;
  const processor = map.ItemProcessor as { ProcessorConfig?: Record<string, unknown> };
  processor.ProcessorConfig = { Mode: 'INLINE' };
  forEachState(copy, (state) => {
    if (state.Type === 'Task' && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
      state.TimeoutSeconds = LOCAL_TASK_TIMEOUT_SECONDS;
    }
    const params = state.Parameters as Record<string, unknown> | undefined;
    const body = params?.['Body.$'];
    const m = typeof body === 'string' ? /^States\.JsonToString\((\$[^)]*)\)$/.exec(body) : null;
    if (params && m) params['Body.$'] = m[1];
  });
  return copy;
}

/** Every state, including those inside Map item processors and Parallel branches. */
export function forEachState(def: { States: Record<string, AslState> }, fn: (state: AslState, name: string) => void): void {
  for (const [name, state] of Object.entries(def.States)) {
    fn(state, name);
    const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, AslState> } | undefined;
    if (processor) forEachState(processor, fn);
    for (const branch of (state.Branches as { States: Record<string, AslState> }[] | undefined) ?? []) forEachState(branch, fn);
  }
}
