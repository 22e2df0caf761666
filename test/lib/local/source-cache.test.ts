import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { synthesizeWorkflow, toStackSettings } from '../../../lib/local/definition';
import { SynthesisError, synthesizeWorkflowCached, validateOnce } from '../../../lib/local/workflow-cache';
import { toLocalDefinition } from '../../../lib/local/local-definition';
import { cachedBySources, sourceFilesOf } from '../../../lib/local/source-cache';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'source-cache-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('cachedBySources over the files esbuild finds in an import graph', () => {
  const src = path.join(tmp, 'src');
  const main = path.join(src, 'main.ts');
  const dep = path.join(src, 'dep.ts');
  const cache = { directory: path.join(tmp, 'cache') };
  let builds = 0;
  const lookup = (key: unknown = { v: 1 }) =>
    cachedBySources(
      'thing',
      key,
      async () => {
        builds++;
        return { value: { text: fs.readFileSync(dep, 'utf8'), build: builds }, files: sourceFilesOf(main) };
      },
      cache,
    );

  beforeAll(() => {
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(main, "import { x } from './dep';\nexport const y = x + 1;\n");
    fs.writeFileSync(dep, 'export const x = 1;\n');
  });

  test('the recorded sources are the entry and what it imports', () => {
    expect(sourceFilesOf(main).sort()).toEqual([dep, main].sort());
  });

  test('an unchanged source reuses the entry; a changed one rebuilds it; so does another key', async () => {
    const first = await lookup();
    expect(first.hit).toBe(false);
    expect(first.value).toEqual({ text: 'export const x = 1;\n', build: 1 });

    const second = await lookup();
    expect(second.hit).toBe(true);
    expect(second.value).toEqual(first.value);
    expect(builds).toBe(1);

    fs.writeFileSync(dep, 'export const x = 2;\n');
    const third = await lookup();
    expect(third.hit).toBe(false);
    expect(third.value).toEqual({ text: 'export const x = 2;\n', build: 2 });
    // The fingerprint names what the entry was built from (code caches are named by it): same sources, same fingerprint.
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(third.fingerprint).not.toBe(first.fingerprint);
    expect((await lookup()).fingerprint).toBe(third.fingerprint);
    expect((await lookup()).hit).toBe(true);

    const otherKey = await lookup({ v: 2 });
    expect(otherKey.hit).toBe(false);
    expect(builds).toBe(3);
  });

  test('a deleted source or a corrupt entry rebuilds instead of failing', async () => {
    const ok = await lookup();
    fs.writeFileSync(ok.file, '{ not json');
    expect((await lookup()).hit).toBe(false);
    fs.rmSync(dep);
    try {
      await expect(lookup()).rejects.toThrow(/ENOENT/);
    } finally {
      fs.writeFileSync(dep, 'export const x = 2;\n');
    }
  });
});

describe('synthesizeWorkflowCached', () => {
  const cache = { directory: path.join(tmp, 'synth-cache') };
  const options = { bucketName: 'cache-test', settings: { lambdaMaxRecords: 7, chunkRetryIntervalSeconds: 1 } };

  test('synthesizes once, then returns the same definition from the cache; other settings miss', async () => {
    const cold = await synthesizeWorkflowCached(options, cache);
    expect(cold.hit).toBe(false);
    // The synthesis child also had the interpreter validate the local adaptation of the definition.
    expect(cold.validated).toBe(true);
    const warm = await synthesizeWorkflowCached(options, cache);
    expect(warm.hit).toBe(true);
    expect(warm.validated).toBe(false);
    expect(warm.definition).toEqual(cold.definition);
    expect(warm.functionArns).toEqual(cold.functionArns);
    // The cached definition is what a fresh synthesis gives.
    expect(warm.definition).toEqual(synthesizeWorkflow({ bucketName: options.bucketName, settings: toStackSettings(options.settings) }).definition);

    const other = await synthesizeWorkflowCached({ ...options, settings: { ...options.settings, chunkRetryIntervalSeconds: 2 } }, cache);
    expect(other.hit).toBe(false);
    expect(other.definition).not.toEqual(cold.definition);
  }, 300_000);

  test('the entry is checked against the sources of the workflow stack and its constructs', () => {
    const entries = fs.readdirSync(cache.directory).filter((f) => f.startsWith('workflow-definition-') && f.endsWith('.json'));
    expect(entries.length).toBeGreaterThan(0);
    const files = (JSON.parse(fs.readFileSync(path.join(cache.directory, entries[0]), 'utf8')) as { files: string[] }).files;
    const root = path.resolve(__dirname, '../../..');
    for (const f of ['lib/local/definition.ts', 'lib/workflow/chunked-processing-stack.ts', 'lib/workflow/chunked-processing-workflow.ts', 'lib/stacks/stage-config.ts']) {
      expect(files).toContain(path.join(root, f));
    }
    expect(files.some((f) => f.includes('node_modules'))).toBe(false);
  });

  test('a failing synthesis in the child process is reported with the construct error, and nothing is cached', async () => {
    const failing = { directory: path.join(tmp, 'synth-cache-failing') };
    const bad = { bucketName: 'cache-test', settings: { toleratedFailurePercentage: 150 } };
    const err = await synthesizeWorkflowCached(bad, failing).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(SynthesisError);
    expect((err as Error).message).toMatch(/synthesizing the workflow stack \(ChunkedProcessingStack\) for the local run failed: .*toleratedFailurePercentage \(150\)/);
    // No entry, complete or partial (the parent writes one only after a complete answer).
    expect(fs.readdirSync(failing.directory)).toEqual([]);
  }, 300_000);

  test('validateOnce validates a definition once and remembers it by its text', async () => {
    const dir = { directory: path.join(tmp, 'validate-cache') };
    const { definition } = await synthesizeWorkflowCached(options, cache);
    const local = toLocalDefinition(definition);
    expect(await validateOnce(local, dir, false)).toBe(false);
    expect(await validateOnce(local, dir, false)).toBe(true);
    // A definition the interpreter refuses is not remembered.
    const broken = { ...local, StartAt: 'NoSuchState' };
    await expect(validateOnce(broken, dir, false)).rejects.toThrow();
    await expect(validateOnce(broken, dir, false)).rejects.toThrow();
  }, 300_000);
});
