import { createHash } from 'crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'fs';
import * as os from 'os';
import path from 'path';
import { crc32, gunzipSync } from 'zlib';

/**
 * Uncompressed language data for the OCR engine, so a job does not gunzip `<lang>.traineddata.gz`
 * (5 MB for eng) every time its process starts.
 *
 * - The `ocr` image gunzips the data at build time next to the .gz (Dockerfile), so `languageData`
 *   finds `<lang>.traineddata` in the language folder and uses it as is.
 * - Elsewhere (a checkout, `npm test`) the data is unpacked once into a cache folder
 *   (OCR_MODEL_CACHE, else node_modules/.cache/cdk-batch-platform-ocr next to the installed data
 *   package, else the OS temp folder), written to a temporary name and renamed, so a reader sees a
 *   whole file or none. Every start checks the cached file against the .gz it came from (the gzip
 *   trailer holds the uncompressed size and CRC-32), so a corrupt, partial or stale file is replaced,
 *   never used.
 * - When no cache folder is writable, the engine reads the .gz as before (`gzip: true`).
 */
export interface LanguageData {
  /** The folder tesseract.js reads `<lang>.traineddata[.gz]` from. */
  langPath: string;
  /** Whether the files there are gzip-compressed. */
  gzip: boolean;
}

/** The uncompressed size and CRC-32 a .gz file's trailer records (RFC 1952 section 2.3.1). */
export function gzipTrailer(gzFile: string): { size: number; crc: number } {
  const fd = openSync(gzFile, 'r');
  try {
    const len = fstatSync(fd).size;
    if (len < 18) throw new Error(`${gzFile} is too short to be gzip data (${len} bytes)`);
    const tail = Buffer.alloc(8);
    readSync(fd, tail, 0, 8, len - 8);
    return { crc: tail.readUInt32LE(0), size: tail.readUInt32LE(4) };
  } finally {
    closeSync(fd);
  }
}

/** True when `file` holds exactly the data the .gz trailer describes (size mod 2^32 and CRC-32). */
function matchesTrailer(file: string, trailer: { size: number; crc: number }): boolean {
  try {
    if (statSync(file).size % 2 ** 32 !== trailer.size) return false;
    return crc32(readFileSync(file)) === trailer.crc;
  } catch {
    return false;
  }
}

/** The default cache root: node_modules/.cache next to the installed data package, else the temp folder. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OCR_MODEL_CACHE) return env.OCR_MODEL_CACHE;
  try {
    const pkg = path.dirname(require.resolve('@tesseract.js-data/eng/package.json'));
    const nodeModules = path.resolve(pkg, '..', '..');
    if (path.basename(nodeModules) === 'node_modules') return path.join(nodeModules, '.cache', 'cdk-batch-platform-ocr');
  } catch {
    // no data package installed: the temp folder
  }
  return path.join(os.tmpdir(), 'cdk-batch-platform-ocr');
}

/**
 * Unpacks `<srcDir>/<lang>.traineddata.gz` to `<cacheDir>/<lang>.traineddata` unless a file there
 * already matches it. Written to a unique temporary name in the same folder, then renamed over the
 * target (atomic on one file system), so concurrent jobs never read a half-written model.
 * Returns false when the cache folder cannot be written.
 */
export function ensureUnpacked(srcDir: string, lang: string, cacheDir: string): boolean {
  const gz = path.join(srcDir, `${lang}.traineddata.gz`);
  const target = path.join(cacheDir, `${lang}.traineddata`);
  const trailer = gzipTrailer(gz);
  if (matchesTrailer(target, trailer)) return true;
  let data: Buffer;
  try {
    data = gunzipSync(readFileSync(gz));
  } catch (err) {
    throw new Error(`${gz}: corrupt language data (${(err as Error).message})`);
  }
  if (data.length % 2 ** 32 !== trailer.size || crc32(data) !== trailer.crc) {
    throw new Error(`${gz}: corrupt language data (the unpacked data does not match its gzip trailer)`);
  }
  const tmp = `${target}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(tmp, data, { flag: 'wx' });
    renameSync(tmp, target);
    return true;
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
    return false;
  }
}

/**
 * Where the engine reads `langs` from, and whether compressed. Uncompressed files already in the
 * language folder (the ocr image) win; else the cache (unpacked on first use); else the .gz files.
 */
export function languageData(srcDir: string, langs: string[], cacheRoot = defaultCacheRoot()): LanguageData {
  if (langs.every((l) => existsSync(path.join(srcDir, `${l}.traineddata`)))) return { langPath: srcDir, gzip: false };
  if (!langs.every((l) => existsSync(path.join(srcDir, `${l}.traineddata.gz`)))) return { langPath: srcDir, gzip: true };
  // One cache folder per language folder, so two installed versions never overwrite each other's files.
  let real = srcDir;
  try {
    real = realpathSync(srcDir);
  } catch {
    // keep the path as given
  }
  const cacheDir = path.join(cacheRoot, createHash('sha256').update(real).digest('hex').slice(0, 16));
  for (const lang of langs) {
    if (!ensureUnpacked(srcDir, lang, cacheDir)) return { langPath: srcDir, gzip: true };
  }
  return { langPath: cacheDir, gzip: false };
}
