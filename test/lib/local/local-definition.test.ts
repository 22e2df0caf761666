import { synthesizeWorkflow } from '../../../lib/local/definition';
import { LOAD_MANIFEST_STATE, LOCAL_ITEMS_PATH, LOCAL_TASK_TIMEOUT_SECONDS, toLocalDefinition } from '../../../lib/local/local-definition';

/** Paths (state names joined by '/') to every field that differs between two JSON values. */
function diff(a: unknown, b: unknown, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return [at];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}/${k}` : k));
}

describe('toLocalDefinition', () => {
  const { definition, template } = synthesizeWorkflow({ bucketName: 'local-runs', settings: { toleratedFailurePercentage: 10 } });
  const local = toLocalDefinition(definition);

  test('the definition run locally is the one in the synthesized template', () => {
    const machine = Object.values(template.Resources as Record<string, { Type: string }>).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
    expect(machine).toHaveLength(1);
    expect(definition.States.ProcessChunks).toMatchObject({ ItemReader: { ReaderConfig: { InputType: 'JSONL' } }, ToleratedFailurePercentage: 10 });
  });

  test('changes only the documented fields', () => {
    const untimed = JSON.parse(JSON.stringify(local)) as typeof local;
    const changed = diff(definition, untimed).filter((p) => !p.endsWith('/TimeoutSeconds'));
    expect(changed.sort()).toEqual(
      [
        'States/PlanChunks/Next',
        `States/${LOAD_MANIFEST_STATE}`,
        'States/ProcessChunks/ItemReader',
        'States/ProcessChunks/ToleratedFailurePercentage',
        'States/ProcessChunks/Label',
        'States/ProcessChunks/ItemsPath',
        'States/ProcessChunks/ItemProcessor/ProcessorConfig/Mode',
        'States/ProcessChunks/ItemProcessor/ProcessorConfig/ExecutionType',
        'States/ProcessChunks/ItemProcessor/States/RecordChunkFailure/Parameters/Body.$',
        'States/ProcessChunks/ItemProcessor/States/MarkBatchChunkDone/Parameters/Body.$',
      ].sort(),
    );
  });

  test('the map becomes inline over the manifest lines loaded before it', () => {
    expect(local.States.PlanChunks.Next).toBe(LOAD_MANIFEST_STATE);
    expect(local.States[LOAD_MANIFEST_STATE]).toMatchObject({ Type: 'Task', ResultPath: LOCAL_ITEMS_PATH, Next: 'ProcessChunks' });
    expect(local.States.ProcessChunks).toMatchObject({ ItemsPath: LOCAL_ITEMS_PATH, ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' } } });
    expect(local.States.ProcessChunks.ItemSelector).toEqual(definition.States.ProcessChunks.ItemSelector);
  });

  test('tasks without a timeout get a day instead of the interpreter default of 60 s', () => {
    const inner = (local.States.ProcessChunks.ItemProcessor as { States: Record<string, { TimeoutSeconds?: number }> }).States;
    expect(inner.ProcessChunkOnBatch.TimeoutSeconds).toBe(LOCAL_TASK_TIMEOUT_SECONDS);
    expect(local.States.AggregateResults.TimeoutSeconds).toBe(LOCAL_TASK_TIMEOUT_SECONDS);
  });

  test('JSON bodies of S3 writes are passed as objects, not through States.JsonToString', () => {
    const inner = (local.States.ProcessChunks.ItemProcessor as { States: Record<string, { Parameters: Record<string, unknown> }> }).States;
    expect(inner.RecordChunkFailure.Parameters['Body.$']).toBe('$.failure');
    expect(inner.MarkBatchChunkDone.Parameters['Body.$']).toBe('$.marker');
  });

  test('leaves the definition it was given untouched', () => {
    expect(definition.States.PlanChunks.Next).toBe('ProcessChunks');
  });
});
