/**
 * The synthesis child of the local runner (see workflow-cache.ts): a process of its own that loads
 * aws-cdk-lib, synthesizes `ChunkedProcessingStack`, lists the source files it was built from and
 * validates the local adaptation of its definition with the interpreter's own checks, while the
 * orchestrating process starts the S3 server and the worker pool. It gets its options as JSON in
 * argv[2] and answers one IPC message: `{ ok: true, template, files, validated }` or
 * `{ ok: false, error }`. It writes nothing: the parent stores the cache entry when the answer is complete.
 */
import { synthesizeWorkflow, toStackSettings, LocalWorkflowOptions } from './definition';
import { VALIDATION_OPTIONS } from './workflow-cache';
import { toLocalDefinition } from './local-definition';
import { sourceFilesOf } from './source-cache';

/** What the child answers on success. */
export interface SynthAnswer {
  readonly ok: true;
  readonly template: Record<string, unknown>;
  /** This entry's import graph in the package (the cache entry is checked against them). */
  readonly files: string[];
  /** The interpreter accepted the local definition (validation options as the runner uses them). */
  readonly validated: boolean;
}

function main(): void {
  let answer: SynthAnswer | { ok: false; error: string };
  try {
    const options = JSON.parse(process.argv[2] ?? '') as LocalWorkflowOptions;
    const synthesized = synthesizeWorkflow({ bucketName: options.bucketName, settings: toStackSettings(options.settings) });
    const files = sourceFilesOf(__filename);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { StateMachine } = require('aws-local-stepfunctions') as typeof import('aws-local-stepfunctions');
    // Throws on a definition the interpreter would refuse; the runner then never caches it.
    new StateMachine(toLocalDefinition(synthesized.definition) as never, { validationOptions: VALIDATION_OPTIONS });
    answer = { ok: true, template: synthesized.template, files, validated: true };
  } catch (err) {
    answer = { ok: false, error: (err as Error).stack ?? String(err) };
  }
  process.send!(answer, () => process.disconnect());
}

if (require.main === module) main();
