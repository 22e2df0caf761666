import { spawn } from 'child_process';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { AslDefinition, resolveDefinition, SynthesizedWorkflow } from './asl';
import type { LocalWorkflowOptions } from './definition';
import type { SynthAnswer } from './synth-child';
import { cachedBySources, packageVersion, sha256, SourceCacheOptions } from './source-cache';
import { PACKAGE_ROOT } from '../common/node-function';

/** How the runner has the interpreter validate a definition (ARNs are local names, not AWS ones). */
export const VALIDATION_OPTIONS = { checkArn: false } as const;

/** The synthesis child failed: its message says why; nothing was cached. */
export class SynthesisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthesisError';
  }
}

/**
 * The command that runs synth-child: the compiled .js as it is, the TypeScript source of a checkout
 * through tsx's loader (a devDependency of the checkout).
 */
function childCommand(): string[] {
  const ext = path.extname(__filename);
  const script = path.join(__dirname, `synth-child${ext}`);
  if (ext !== '.ts') return [script];
  let loader: string;
  try {
    loader = require.resolve('tsx', { paths: [PACKAGE_ROOT] });
  } catch {
    throw new SynthesisError(`the local runner runs from TypeScript sources (${__filename}) but tsx, which loads them in the synthesis process, is not installed; run npm install`);
  }
  return ['--import', pathToFileURL(loader).href, script];
}

/** Runs synth-child and returns its answer; rejects with the child's error or its exit and stderr. */
export function synthesizeInChild(options: LocalWorkflowOptions): Promise<SynthAnswer> {
  return new Promise<SynthAnswer>((resolve, reject) => {
    let args: string[];
    try {
      args = [...childCommand(), JSON.stringify(options)];
    } catch (err) {
      reject(err);
      return;
    }
    const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, env: process.env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let answer: SynthAnswer | { ok: false; error: string } | undefined;
    child.on('message', (m) => (answer = m as typeof answer));
    child.once('error', (err) => reject(new SynthesisError(`could not start the synthesis process: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (answer?.ok) return resolve(answer);
      const why = answer ? answer.error : `the process exited with ${signal ?? `code ${code}`} without an answer${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
      reject(new SynthesisError(`synthesizing the workflow stack (ChunkedProcessingStack) for the local run failed: ${why}`));
    });
  });
}

/**
 * The synthesized workflow through the source cache. A hit reads the stored template (no aws-cdk-lib
 * is loaded); a miss synthesizes in a child process (synth-child.ts), so the caller can start its S3
 * server and worker pool meanwhile, and stores the entry only once the child answered completely
 * (temporary file + rename: a failed or killed synthesis leaves no entry). The key: the options, the
 * versions of aws-cdk-lib and constructs, CDK_CONTEXT_JSON; the entry is checked against every source
 * file of the child's import graph. `validated`: the child also had the interpreter validate the local
 * definition (see validateOnce).
 */
export async function synthesizeWorkflowCached(
  options: LocalWorkflowOptions,
  cache: SourceCacheOptions = {},
): Promise<SynthesizedWorkflow & { readonly hit: boolean; readonly validated: boolean }> {
  const key = {
    options,
    awsCdkLib: packageVersion('aws-cdk-lib'),
    constructs: packageVersion('constructs'),
    cdkContext: process.env.CDK_CONTEXT_JSON ?? null,
  };
  let validated = false;
  const lookup = await cachedBySources(
    'workflow-definition',
    key,
    async () => {
      const answer = await synthesizeInChild(options);
      validated = answer.validated;
      return { value: answer.template, files: answer.files };
    },
    cache,
  );
  return { ...resolveDefinition(lookup.value as never), hit: lookup.hit, validated };
}

/**
 * The interpreter's validation of a definition (asl-validator, about 0.5 s) once per definition text and
 * interpreter version: remembered in the cache. `alreadyValidated` (the synthesis child validated this
 * very definition) records it without validating again.
 */
export async function validateOnce(local: AslDefinition, cache: SourceCacheOptions, alreadyValidated: boolean): Promise<boolean> {
  const text = JSON.stringify(local);
  const lookup = await cachedBySources(
    'validated-definition',
    { definition: sha256(text), interpreter: packageVersion('aws-local-stepfunctions'), validationOptions: VALIDATION_OPTIONS },
    async () => {
      if (!alreadyValidated) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { StateMachine } = require('aws-local-stepfunctions') as typeof import('aws-local-stepfunctions');
        // A copy: the interpreter adds to the definition it is given.
        new StateMachine(JSON.parse(text) as never, { validationOptions: VALIDATION_OPTIONS });
      }
      return { value: true, files: [] };
    },
    cache,
  );
  return lookup.hit;
}
