import * as fs from 'fs';
import * as path from 'path';

/**
 * V8 code caches for the one-file bundles the local runner starts as child processes (the pool's worker
 * processes, the embedded S3 server). Loading a bundle compiles its top level and then, lazily, every
 * function start-up calls: about a third of a worker process's start-up (490 -> 315 ms measured on the
 * 2-core machine) and a quarter of the S3 server's. A cache taken when the process exits holds the
 * bytecode of every function compiled until then, so the next process skips those compilations.
 *
 * Why not a package: v8-compile-cache (and Node 22's module.enableCompileCache) produce the cache right
 * after compiling the top level, before it runs, so it holds only eagerly compiled code (490 -> 440 ms
 * measured); Node 20 has no built-in compile cache.
 *
 * V8 accepts a cache only for the same V8 version and flags, and checks the source by its length alone:
 * so a cache file is named by a hash of the bundle's contents (the source cache's fingerprint of its
 * entry, which covers the bundle), the Node version and the architecture, and a rejected cache is
 * replaced. A cache that cannot be read or written only costs the compilation it would have saved.
 */

/**
 * The loader, as JavaScript for `node -e`: `__loadWithCodeCache(file, cacheFile, asMain)` runs the
 * CommonJS file `file` (as the main module when `asMain`) with the V8 code cache in `cacheFile`, and,
 * when there was none or V8 rejected it, writes a new one when the process exits (temporary file and
 * rename: a concurrent reader sees the old cache or the new one, never half of one).
 */
export const CODE_CACHE_LOADER = `
function __loadWithCodeCache(file, cacheFile, asMain) {
  const fs = require('fs'), path = require('path'), vm = require('vm'), Module = require('module');
  const source = fs.readFileSync(file, 'utf8');
  let cachedData;
  try { cachedData = fs.readFileSync(cacheFile); } catch (e) { cachedData = undefined; }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      const tmp = cacheFile + '.' + process.pid + '.tmp';
      try {
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch (e) {
        try { fs.rmSync(tmp, { force: true }); } catch (e2) { /* nothing to remove */ }
      }
    });
  }
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  if (asMain) {
    m.id = '.';
    process.mainModule = m;
  }
  Module._cache[file] = m;
  const req = (id) => m.require(id);
  req.resolve = (request, options) => Module._resolveFilename(request, m, false, options);
  req.main = asMain ? m : process.mainModule;
  req.cache = Module._cache;
  script.runInThisContext().call(m.exports, m.exports, req, m, file, path.dirname(file));
  m.loaded = true;
  return m.exports;
}
`;

/**
 * Node arguments that run the bundle `file` as the main module with the code cache `cacheFile`, then
 * `args`: inside, process.argv is [node, file, ...args] as with `node file ...args`.
 */
export function mainWithCodeCache(file: string, cacheFile: string, args: readonly string[]): string[] {
  const main = `${CODE_CACHE_LOADER}
const [file, cacheFile] = process.argv.splice(1, 2);
process.argv.splice(1, 0, file);
__loadWithCodeCache(file, cacheFile, true);
`;
  return ['-e', main, file, cacheFile, ...args];
}

/**
 * Where the code cache of a cached bundle goes: next to it, named by the fingerprint of its cache entry
 * (which changes with the bundle's contents), the Node version and the architecture. Code caches of the
 * same bundle under other names (an older bundle, another Node) are removed.
 */
export function codeCacheFile(bundle: string, fingerprint: string): string {
  const base = path.basename(bundle);
  const name = `${base}.${fingerprint.slice(0, 16)}.${process.version}-${process.arch}.v8cache`;
  try {
    for (const f of fs.readdirSync(path.dirname(bundle))) {
      if (f !== name && f.startsWith(`${base}.`) && f.endsWith('.v8cache')) fs.rmSync(path.join(path.dirname(bundle), f), { force: true });
    }
  } catch {
    // an unreadable folder: nothing to prune
  }
  return path.join(path.dirname(bundle), name);
}
