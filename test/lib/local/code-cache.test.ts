import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { codeCacheFile, mainWithCodeCache } from '../../../lib/local/code-cache';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'code-cache-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A CommonJS "bundle" that reports how Node sees it: main module or not, its file names, its arguments. */
const BUNDLE = `
const helper = () => 'compiled ' + [1, 2, 3].map((n) => n * 2).join(',');
process.stdout.write(JSON.stringify({
  main: require.main === module,
  filename: __filename,
  dirname: __dirname,
  argv: process.argv.slice(1),
  resolved: require.resolve('path'),
  helper: helper(),
}));
`;

function run(file: string, cacheFile: string, args: string[] = []) {
  const r = spawnSync(process.execPath, mainWithCodeCache(file, cacheFile, args), { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, out: r.status === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
}

describe('mainWithCodeCache', () => {
  const file = path.join(tmp, 'bundle.js');
  const cacheFile = path.join(tmp, 'bundle.js.v8cache');
  beforeAll(() => fs.writeFileSync(file, BUNDLE));

  test('runs the file as the main module, with the arguments `node file ...args` would give it', () => {
    const { status, out, stderr } = run(file, cacheFile, ['--serve', '--port', '0']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(out).toEqual({
      main: true,
      filename: file,
      dirname: tmp,
      argv: [file, '--serve', '--port', '0'],
      resolved: 'path',
      helper: 'compiled 2,4,6',
    });
  });

  test('writes the cache on the first exit, keeps an accepted one, replaces a rejected one', () => {
    fs.rmSync(cacheFile, { force: true });
    expect(run(file, cacheFile).status).toBe(0);
    const written = fs.statSync(cacheFile);
    expect(written.size).toBeGreaterThan(0);

    // Accepted by V8: not written again (the same file, not a renamed replacement).
    expect(run(file, cacheFile).out?.helper).toBe('compiled 2,4,6');
    expect(fs.statSync(cacheFile).ino).toBe(written.ino);

    // Garbage is rejected by V8's checks: the program still runs and a valid cache replaces it.
    fs.writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    expect(run(file, cacheFile).out?.helper).toBe('compiled 2,4,6');
    const replaced = fs.readFileSync(cacheFile);
    expect(replaced.equals(Buffer.alloc(4096, 7))).toBe(false);
    expect(replaced.length).toBe(written.size);
    // No temporary files stay behind.
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('a cache that cannot be written costs nothing but the compilation', () => {
    const unwritable = path.join(tmp, 'no-such-folder', 'bundle.js.v8cache');
    const { status, out } = run(file, unwritable);
    expect(status).toBe(0);
    expect(out?.main).toBe(true);
    expect(fs.existsSync(unwritable)).toBe(false);
  });

  test('an error of the program is reported as by node itself: exit 1 and its stack on stderr', () => {
    const failing = path.join(tmp, 'failing.js');
    fs.writeFileSync(failing, "throw new Error('broken bundle');\n");
    const r = run(failing, path.join(tmp, 'failing.js.v8cache'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('broken bundle');
    expect(r.stderr).toContain(failing);
  });
});

describe('codeCacheFile', () => {
  test('names the cache by the bundle fingerprint, Node version and architecture, and removes those of older bundles', () => {
    const dir = path.join(tmp, 'cache');
    fs.mkdirSync(dir);
    const bundle = path.join(dir, 'worker-bundle-abc.js');
    const older = codeCacheFile(bundle, 'f'.repeat(64));
    fs.writeFileSync(older, 'old');
    const otherBundle = codeCacheFile(path.join(dir, 'worker-bundle-abcd.js'), 'f'.repeat(64));
    fs.writeFileSync(otherBundle, 'other');

    const current = codeCacheFile(bundle, '0'.repeat(64));
    expect(path.basename(current)).toBe(`worker-bundle-abc.js.${'0'.repeat(16)}.${process.version}-${process.arch}.v8cache`);
    expect(current).not.toBe(older);
    expect(fs.existsSync(older)).toBe(false);
    // Another bundle's cache whose name merely starts alike stays.
    expect(fs.readFileSync(otherBundle, 'utf8')).toBe('other');
  });
});
