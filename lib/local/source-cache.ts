import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT } from '../common/node-function';

/**
 * A cache of things the local runner derives from this package's sources (the synthesized state
 * machine, the bundled worker). An entry is named by a hash of its key (options, package versions)
 * and records the source files it was built from with a hash of their contents; it is used only while
 * every one of those files still has the same contents. A file added to or dropped from the import
 * graph changes the file that imports it, so the recorded list is enough to notice it.
 */
export interface SourceCacheOptions {
  /** @default $CDK_BATCH_PLATFORM_CACHE_DIR, else node_modules/.cache/cdk-batch-platform of the package, else <tmp>/cdk-batch-platform-cache */
  readonly directory?: string;
}

/** Bumped when the layout of an entry changes. */
const FORMAT = 1;

export function defaultCacheDirectory(): string {
  if (process.env.CDK_BATCH_PLATFORM_CACHE_DIR) return process.env.CDK_BATCH_PLATFORM_CACHE_DIR;
  const inPackage = path.join(PACKAGE_ROOT, 'node_modules', '.cache', 'cdk-batch-platform');
  try {
    fs.mkdirSync(inPackage, { recursive: true });
    fs.accessSync(inPackage, fs.constants.W_OK);
    return inPackage;
  } catch {
    return path.join(os.tmpdir(), 'cdk-batch-platform-cache');
  }
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** One hash over the paths and contents of the files (a missing file hashes as missing). */
export function fingerprintFiles(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort()) {
    h.update(f).update('\0');
    try {
      h.update(fs.readFileSync(f));
    } catch {
      h.update('<missing>');
    }
    h.update('\0');
  }
  return h.digest('hex');
}

/** The version of an installed package (part of a cache key), or 'none'. */
export function packageVersion(name: string): string {
  try {
    const file = require.resolve(`${name}/package.json`, { paths: [PACKAGE_ROOT] });
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'none';
  }
}

interface Entry<T> {
  readonly format: number;
  readonly key: string;
  readonly files: string[];
  readonly fingerprint: string;
  readonly value: T;
}

export interface CacheLookup<T> {
  readonly value: T;
  /** True when the entry was reused, false when it was (re)built by this call. */
  readonly hit: boolean;
  /** The entry's file. */
  readonly file: string;
  /** The hash of the entry's source files' paths and contents (it changes whenever one of them does). */
  readonly fingerprint: string;
}

/**
 * Returns the cached value of `name` for `key` while its recorded sources are unchanged; otherwise
 * builds it (`build` returns the value and the absolute paths of the files it was derived from) and
 * stores it. `build` gets the entry's base path (without extension) for files of its own (a bundle).
 * Entries are written to a temporary file and renamed, so a crash never leaves half an entry.
 */
export async function cachedBySources<T>(
  name: string,
  key: unknown,
  build: (basePath: string) => Promise<{ value: T; files: string[] }>,
  options: SourceCacheOptions = {},
): Promise<CacheLookup<T>> {
  const dir = options.directory ?? defaultCacheDirectory();
  fs.mkdirSync(dir, { recursive: true });
  const keyText = JSON.stringify({ format: FORMAT, key });
  const base = path.join(dir, `${name}-${sha256(keyText).slice(0, 24)}`);
  const file = `${base}.json`;
  try {
    const entry = JSON.parse(fs.readFileSync(file, 'utf8')) as Entry<T>;
    if (entry.format === FORMAT && entry.key === keyText && entry.fingerprint === fingerprintFiles(entry.files)) {
      return { value: entry.value, hit: true, file, fingerprint: entry.fingerprint };
    }
  } catch {
    // no entry, or an unreadable one: build it again
  }
  const { value, files } = await build(base);
  const entry: Entry<T> = { format: FORMAT, key: keyText, files, fingerprint: fingerprintFiles(files), value };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(entry));
  fs.renameSync(tmp, file);
  return { value, hit: false, file, fingerprint: entry.fingerprint };
}

/**
 * The source files of this package that `entry` imports, directly or not (esbuild's view of the import
 * graph; installed packages are left out: their versions go into the key instead).
 */
export function sourceFilesOf(entry: string): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  // buildSync: no esbuild service stays behind, and a bundle being built at the same time keeps its own.
  const result = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: PACKAGE_ROOT,
    outdir: path.join(os.tmpdir(), 'unused-esbuild-out'),
  });
  return Object.keys(result.metafile!.inputs).map((f) => path.resolve(PACKAGE_ROOT, f));
}
