import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CommanderError } from 'commander';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { CliContext } from '../../../lib/client/cli/context';
import { buildProgram } from '../../../lib/client/cli/program';
import * as runLocalCommand from '../../../lib/local/cli-run-local';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-run-local-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `batchctl <argv>` with only the run-local command registered, as bin/batchctl does with all of them. */
async function batchctl(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ctx = new CliContext({ stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: process.env, isTTY: false });
  const program = buildProgram(ctx, [runLocalCommand]);
  let code = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    code = err instanceof CommanderError ? 2 : ctx.fail(err, false);
  }
  return { code, stdout, stderr };
}

describe('batchctl run-local', () => {
  test('a missing input file exits 2 with the reason, before anything runs', async () => {
    const r = await batchctl(['run-local', '--input', path.join(tmp, 'none.jsonl'), '--operation', 'aggregate-defects', '--output', path.join(tmp, 'o.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`run-local: --input ${path.join(tmp, 'none.jsonl')} does not exist`);
  });

  test('a non-positive chunk size exits 2', async () => {
    const r = await batchctl(['run-local', '--input', 'x', '--operation', 'aggregate-defects', '--output', 'o', '--chunk-records', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--chunk-records.*expected a whole number >= 1, got "0"/);
  });

  test('runs the workflow and prints the summary and where the result is', async () => {
    const input = path.join(tmp, 'small.jsonl');
    await writeSampleFile(input, { count: 6000, seed: 1 });
    const output = path.join(tmp, 'result.json');
    const r = await batchctl([
      'run-local', '--input', input, '--operation', 'aggregate-defects', '--output', output,
      '--chunk-records', '2000', '--workers', '1', '--state-dir', path.join(tmp, 'state'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^run local-\S+: SUCCEEDED$/m);
    expect(r.stdout).toContain('chunks: 3/3 succeeded');
    expect(r.stdout).toContain(`result: ${output}`);
    expect(JSON.parse(fs.readFileSync(output, 'utf8'))).toMatchObject({ operation: 'aggregate-defects', records: 6000 });
  }, 300_000);
});
