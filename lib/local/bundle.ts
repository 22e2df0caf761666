import * as fs from 'fs';
import * as path from 'path';
import { PACKAGE_ROOT } from '../common/node-function';

/**
 * Bundles `entry` with esbuild into one CommonJS file for Node 20 at `${base}.js` (written to a
 * temporary file and renamed, so a reader never sees half a bundle) and returns it with the absolute
 * paths of every input esbuild read. buildSync: no esbuild service stays behind to hold the process
 * open, and two bundles built one after the other never stop each other's service.
 */
export function bundleInto(base: string, entry: string): { file: string; inputs: string[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const file = `${base}.js`;
  const tmp = `${base}.${process.pid}.tmp.js`;
  const result = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: tmp,
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: PACKAGE_ROOT,
  });
  fs.renameSync(tmp, file);
  return { file, inputs: Object.keys(result.metafile!.inputs).map((f) => path.resolve(PACKAGE_ROOT, f)) };
}
