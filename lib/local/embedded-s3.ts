import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { LOCAL_INPUT_ROOT_ENV, localInputPath } from '../../containers/worker/src/engine/source';
import { bundleInto } from './bundle';
import { CODE_CACHE_LOADER, codeCacheFile } from './code-cache';
import { cachedBySources, packageVersion, SourceCacheOptions } from './source-cache';

/**
 * The local runner's S3: s3rver (file-system store) in a child process of its own, so its request
 * handling, hashing and file I/O never run on the event loop that drives the workflow. The child is
 * Node itself running a few lines that load s3rver from where this package resolves it (no bundling,
 * no TypeScript loader). It exits when told to (close) and when its parent goes away (its stdin closes).
 */
export interface EmbeddedS3 {
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** Stops the server process and waits for it to exit. */
  close(): Promise<void>;
}

// argv: [node, s3rver module, store directory, bucket, port, code cache file or ''].
const CHILD_SCRIPT = `${CODE_CACHE_LOADER}
const S3rver = process.argv[5] ? __loadWithCodeCache(process.argv[1], process.argv[5], false) : require(process.argv[1]);
const server = new S3rver({ address: '127.0.0.1', port: Number(process.argv[4] || 0), silent: true, directory: process.argv[2], configureBuckets: [{ name: process.argv[3] }] });
server.run().then(({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'), (err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
const stop = () => process.exit(0);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
`;

/** s3rver as one file with a code cache for it (bundledS3rver), which the server process loads instead of s3rver's modules. */
export interface S3rverBundle {
  readonly file: string;
  readonly codeCache: string;
}

/**
 * Starts the server on `port` of 127.0.0.1 (0: any free port): s3rver from where this package resolves
 * it, or from `bundle` (a quicker start: one file, compiled code cached).
 */
export async function startEmbeddedS3(directory: string, bucket: string, port = 0, bundle?: S3rverBundle): Promise<EmbeddedS3> {
  fs.mkdirSync(directory, { recursive: true });
  const s3rverMain = bundle?.file ?? require.resolve('s3rver');
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT, s3rverMain, directory, bucket, String(port), bundle?.codeCache ?? ''], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const bound = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        child.stdout!.off('data', onData);
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch {
          reject(new Error(`embedded S3 printed ${JSON.stringify(line)} instead of its port`));
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`embedded S3 exited with code ${code} before listening: ${stderr.trim()}`)));
  });
  child.stdout!.resume();
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    process: child,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin!.end();
        child.kill('SIGTERM');
      }
      await exited;
    },
  };
}

/** Where s3rver's file-system store keeps an object's bytes and its side files (s3rver 3 layout, via its own store). */
function storePaths(directory: string, bucket: string, key: string): { object: string; md5: string; metadata: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const FilesystemStore = require(path.join(path.dirname(require.resolve('s3rver')), 'stores', 'filesystem')) as new (root: string) => {
    getResourcePath(bucket: string, key: string, resource: string): string;
  };
  const store = new FilesystemStore(directory);
  const object = store.getResourcePath(bucket, key, 'object');
  return { object, md5: `${object}.md5`, metadata: store.getResourcePath(bucket, key, 'metadata.json') };
}

/**
 * A stand-in for an object's MD5 that does not read the whole file: a hash of its size, modification
 * time, inode and first and last MiB. The same unchanged file gives the same ETag (a restarted run
 * checks it against its plan); rewriting the file changes its modification time and so the ETag.
 */
export function fileFingerprint(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  const h = createHash('md5').update(`${st.size}:${st.mtimeNs}:${st.ino}:`);
  const fd = fs.openSync(file, 'r');
  try {
    const n = Number(st.size);
    const span = Math.min(n, 1024 * 1024);
    const buf = Buffer.alloc(span);
    fs.readSync(fd, buf, 0, span, 0);
    h.update(buf);
    fs.readSync(fd, buf, 0, span, Math.max(0, n - span));
    h.update(buf);
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Puts a local file into the embedded S3 without copying it: a hard link (a symbolic link when the
 * store is on another file system) under the object's name in the store, with the ETag precomputed
 * (fileFingerprint) so s3rver never hashes the file. GETs, ranged GETs and HEADs serve the file itself.
 * The key must only ever be read: a PUT to it would write through the link into the local file.
 * Returns a function that removes the object again (the file stays).
 */
export function linkObject(directory: string, bucket: string, key: string, file: string): { etag: string; remove: () => void } {
  const p = storePaths(directory, bucket, key);
  fs.mkdirSync(path.dirname(p.object), { recursive: true });
  for (const f of [p.object, p.md5, p.metadata]) fs.rmSync(f, { force: true });
  const source = path.resolve(file);
  try {
    fs.linkSync(source, p.object);
  } catch {
    fs.symlinkSync(source, p.object);
  }
  const etag = fileFingerprint(source);
  fs.writeFileSync(p.md5, etag);
  fs.writeFileSync(p.metadata, JSON.stringify({ 'content-type': 'application/octet-stream' }));
  return {
    etag,
    remove: () => {
      for (const f of [p.object, p.md5, p.metadata]) fs.rmSync(f, { force: true });
    },
  };
}

/** The worker's variable naming a folder whose `<bucket>/<key>` files it reads instead of those S3 objects. */
export const LOCAL_INPUT_ROOT_VARIABLE = LOCAL_INPUT_ROOT_ENV;

/**
 * Lays out a local file where a worker with `WORKER_LOCAL_INPUT_ROOT=<root>` reads s3://bucket/key
 * from (`<root>/<bucket>/<key>`): a hard link (a symbolic link across file systems), so the workers read
 * the input in place, with no S3 server streaming it. Returns a function that removes the link (the
 * file stays). The key must stay inside the root.
 */
export function linkLocalInput(root: string, bucket: string, key: string, file: string): { path: string; remove: () => void } {
  // The worker's own mapping, so the runner lays out exactly the file the worker will read.
  const target = localInputPath(path.resolve(root), bucket, key);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.rmSync(target, { force: true });
  const source = path.resolve(file);
  try {
    fs.linkSync(source, target);
  } catch {
    fs.symlinkSync(source, target);
  }
  return { path: target, remove: () => fs.rmSync(target, { force: true }) };
}

/**
 * s3rver bundled by esbuild into one file in the source cache, with the name of its code cache: the
 * server process then reads one file instead of s3rver's few hundred modules, and compiles little of it
 * (its start-up: about 450 ms with s3rver's modules, 340 ms bundled, 250 ms bundled with the code cache,
 * measured on the 2-core machine). The entry is keyed by the versions of s3rver and esbuild and checked
 * against the bundle and the package.json of every package in it (an updated dependency rebuilds it).
 */
export async function bundledS3rver(cache: SourceCacheOptions): Promise<S3rverBundle & { hit: boolean }> {
  const lookup = await cachedBySources(
    's3rver-bundle',
    { s3rver: packageVersion('s3rver'), esbuild: packageVersion('esbuild') },
    async (base) => {
      const { file, inputs } = bundleInto(base, require.resolve('s3rver'));
      return { value: file, files: [...packageManifestsOf(inputs), file] };
    },
    cache,
  );
  return { file: lookup.value, codeCache: codeCacheFile(lookup.value, lookup.fingerprint), hit: lookup.hit };
}

/** The package.json of every installed package the (absolute) input paths come from. */
function packageManifestsOf(inputs: readonly string[]): string[] {
  const manifests = new Set<string>();
  for (const input of inputs) {
    const parts = input.split(path.sep);
    const at = parts.lastIndexOf('node_modules');
    if (at < 0) continue;
    const depth = parts[at + 1]?.startsWith('@') ? 3 : 2;
    manifests.add([...parts.slice(0, at + depth), 'package.json'].join(path.sep));
  }
  return [...manifests];
}
