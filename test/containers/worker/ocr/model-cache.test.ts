import { execSync } from 'child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'fs';
import * as os from 'os';
import path from 'path';
import { crc32, gunzipSync, gzipSync } from 'zlib';
import { languageDir } from '../../../../containers/worker/src/ocr/languages';
import { ensureUnpacked, gzipTrailer, languageData } from '../../../../containers/worker/src/ocr/model-cache';

/** A language folder holding a small gzip'd "model" (the real data is 3 MB; the cache logic is the same). */
function langFolder(root: string, content = 'fake traineddata '.repeat(1000)): string {
  const dir = path.join(root, 'lang');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'xyz.traineddata.gz'), gzipSync(Buffer.from(content)));
  return dir;
}

describe('uncompressed language data cache', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ocr-model-cache-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test('the gzip trailer gives the size and CRC-32 of the real eng data', () => {
    const gz = path.join(languageDir(), 'eng.traineddata.gz');
    const data = gunzipSync(readFileSync(gz));
    const t = gzipTrailer(gz);
    expect(t.size).toBe(data.length);
    expect(t.crc).toBe(crc32(data));
  });

  test('unpacks once into the cache and reuses the file on the next start', () => {
    const src = langFolder(root);
    const cacheRoot = path.join(root, 'cache');
    const first = languageData(src, ['xyz'], cacheRoot);
    expect(first.gzip).toBe(false);
    expect(first.langPath.startsWith(cacheRoot)).toBe(true);
    const file = path.join(first.langPath, 'xyz.traineddata');
    expect(readFileSync(file, 'utf8')).toBe('fake traineddata '.repeat(1000));
    const mtime = statSync(file).mtimeMs;
    const ino = statSync(file).ino;
    const second = languageData(src, ['xyz'], cacheRoot);
    expect(second).toEqual(first);
    expect(statSync(file).ino).toBe(ino);
    expect(statSync(file).mtimeMs).toBe(mtime);
    // no temporary file left behind
    expect(readdirSync(first.langPath)).toEqual(['xyz.traineddata']);
  });

  test('a partial (truncated) cache file is replaced, never used', () => {
    const src = langFolder(root);
    const cacheRoot = path.join(root, 'cache');
    const { langPath } = languageData(src, ['xyz'], cacheRoot);
    const file = path.join(langPath, 'xyz.traineddata');
    truncateSync(file, 100);
    const again = languageData(src, ['xyz'], cacheRoot);
    expect(again.gzip).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('fake traineddata '.repeat(1000));
  });

  test('a corrupt cache file of the right size is replaced (CRC check)', () => {
    const src = langFolder(root);
    const cacheRoot = path.join(root, 'cache');
    const { langPath } = languageData(src, ['xyz'], cacheRoot);
    const file = path.join(langPath, 'xyz.traineddata');
    const bad = readFileSync(file);
    bad[10] ^= 0xff;
    writeFileSync(file, bad);
    languageData(src, ['xyz'], cacheRoot);
    expect(readFileSync(file, 'utf8')).toBe('fake traineddata '.repeat(1000));
  });

  test('a cache from older data (the .gz changed) is replaced', () => {
    const src = langFolder(root, 'old model');
    const cacheRoot = path.join(root, 'cache');
    const { langPath } = languageData(src, ['xyz'], cacheRoot);
    langFolder(root, 'new model, another size');
    languageData(src, ['xyz'], cacheRoot);
    expect(readFileSync(path.join(langPath, 'xyz.traineddata'), 'utf8')).toBe('new model, another size');
  });

  test('uncompressed data already in the language folder (the ocr image) is used as is, no cache written', () => {
    const src = langFolder(root);
    writeFileSync(path.join(src, 'xyz.traineddata'), 'unpacked at build time');
    const cacheRoot = path.join(root, 'cache');
    expect(languageData(src, ['xyz'], cacheRoot)).toEqual({ langPath: src, gzip: false });
    expect(existsSync(cacheRoot)).toBe(false);
  });

  test('an unwritable cache folder falls back to reading the .gz', () => {
    // Root ignores permissions, so a file where the cache folder should be makes it unwritable.
    const src = langFolder(root);
    const cacheRoot = path.join(root, 'cache-is-a-file');
    writeFileSync(cacheRoot, 'not a folder');
    expect(languageData(src, ['xyz'], cacheRoot)).toEqual({ langPath: src, gzip: true });
  });

  test('corrupt .gz data is an error naming the file, and nothing is cached', () => {
    const src = langFolder(root);
    const gz = path.join(src, 'xyz.traineddata.gz');
    const bytes = readFileSync(gz);
    bytes.writeUInt32LE((bytes.readUInt32LE(bytes.length - 8) ^ 1) >>> 0, bytes.length - 8); // wrong CRC in the trailer
    writeFileSync(gz, bytes);
    const cacheDir = path.join(root, 'cache', 'x');
    expect(() => ensureUnpacked(src, 'xyz', cacheDir)).toThrow(/xyz\.traineddata\.gz: corrupt language data/);
    expect(existsSync(path.join(cacheDir, 'xyz.traineddata'))).toBe(false);
  });
});

test("the ocr image's build step leaves uncompressed data that the engine uses with no cache", () => {
  // The RUN line of the Dockerfile's ocr-modules stage, run here on a copy of the installed data package.
  const dockerfile = readFileSync(path.resolve(__dirname, '../../../../containers/worker/Dockerfile'), 'utf8');
  const run = dockerfile.split('\n').find((l) => l.startsWith('RUN ') && l.includes('traineddata.gz'));
  expect(run).toBeDefined();
  const root = mkdtempSync(path.join(os.tmpdir(), 'ocr-image-data-'));
  try {
    const pkg = path.dirname(require.resolve('@tesseract.js-data/eng/package.json'));
    cpSync(pkg, path.join(root, 'node_modules/@tesseract.js-data/eng'), { recursive: true });
    execSync(run!.slice('RUN '.length), { cwd: root, shell: '/bin/sh' });
    const dir = path.join(root, 'node_modules/@tesseract.js-data/eng/4.0.0_best_int');
    const cacheRoot = path.join(root, 'cache');
    expect(languageData(dir, ['eng'], cacheRoot)).toEqual({ langPath: dir, gzip: false });
    expect(existsSync(cacheRoot)).toBe(false);
    const t = gzipTrailer(path.join(dir, 'eng.traineddata.gz'));
    const data = readFileSync(path.join(dir, 'eng.traineddata'));
    expect([data.length, crc32(data)]).toEqual([t.size, t.crc]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
