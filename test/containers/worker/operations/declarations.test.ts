import { execFileSync } from 'child_process';
import * as path from 'path';
import { declaredOperationNames, OPERATION_DECLARATIONS } from '../../../../containers/worker/src/operations/declarations';
import { getOperation, operationNames } from '../../../../containers/worker/src/operations/registry';
import { neverSettable } from '../../../../lib/client/policy';

const ROOT = path.resolve(__dirname, '../../../..');

test('every operation the worker runs has exactly one declaration, and no other is declared', () => {
  expect(declaredOperationNames().sort()).toEqual(operationNames().sort());
});

test('no declaration lets a submitter set a name the policy never allows', () => {
  for (const d of OPERATION_DECLARATIONS.values()) {
    for (const name of Object.keys(d.environment)) expect([d.name, name, neverSettable(name)]).toEqual([d.name, name, undefined]);
  }
});

test("an operation's declared config schema is the one its parseConfig applies in the worker", () => {
  const bad = { notAnOption: 1 };
  for (const d of OPERATION_DECLARATIONS.values()) {
    expect([d.name, d.configSchema.safeParse(bad).success]).toEqual([d.name, false]);
    // aggregate-defects takes no config and ignores one in the worker; submit refuses any (stricter).
    if (d.name !== 'aggregate-defects') expect(() => getOperation(d.name).parseConfig(bad)).toThrow(/notAnOption|Unrecognized/);
  }
  expect(OPERATION_DECLARATIONS.get('transform-records')!.configSchema.safeParse({ rename: { a: 'b' } }).success).toBe(true);
});

test('the SDK (and so the submit Lambdas) does not load operation code such as archiver', () => {
  const script = "require('./lib/client'); const heavy = Object.keys(require.cache).filter((k) => /node_modules\\/archiver\\/|operations\\/(bundle-photos|aggregate-defects|transform-records|registry)/.test(k)); console.log(JSON.stringify(heavy));";
  const out = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual([]);
});
