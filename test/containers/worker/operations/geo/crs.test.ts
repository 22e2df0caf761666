import { buildSync } from 'esbuild';
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import COMMON from '../../../../../containers/worker/src/operations/geo/crs-common.json';
import { epsgCode, lookupCrs } from '../../../../../containers/worker/src/operations/geo/crs';

const ROOT = path.resolve(__dirname, '../../../../..');
const EPSG_INDEX = path.join(ROOT, 'node_modules/epsg-index/s');

test('the bundled common definitions are epsg-index\'s, and cover WGS 84, Web Mercator and every WGS 84 UTM zone', () => {
  for (const [code, definition] of Object.entries(COMMON as Record<string, string>)) {
    const entry = JSON.parse(readFileSync(path.join(EPSG_INDEX, `${code}.json`), 'utf8')) as { proj4: string };
    expect([code, definition]).toEqual([code, entry.proj4]);
  }
  const codes = Object.keys(COMMON);
  for (let zone = 1; zone <= 60; zone++) expect(codes).toEqual(expect.arrayContaining([String(32600 + zone), String(32700 + zone)]));
  expect(codes).toEqual(expect.arrayContaining(['4326', '3857']));
});

test('CRS names: EPSG codes, OGC URNs and CRS84 are accepted; anything else is an unknown CRS naming the value', () => {
  expect(['EPSG:4326', 'epsg:3857', 'urn:ogc:def:crs:EPSG::32633', 'urn:ogc:def:crs:OGC:1.3:CRS84'].map(epsgCode)).toEqual(['4326', '3857', '32633', '4326']);
  expect(lookupCrs('EPSG:4326')).toMatchObject({ name: 'EPSG:4326', geographic: true });
  expect(lookupCrs('EPSG:2056')).toMatchObject({ name: 'EPSG:2056', geographic: false });
  expect(lookupCrs('WGS84')).toMatch(/^unknown CRS "WGS84": expected "EPSG:<code>"/);
  expect(lookupCrs('EPSG:999999')).toMatch(/EPSG:999999 is not in the EPSG definitions shipped with the worker/);
  expect(lookupCrs({ name: 'x' })).toMatch(/is not a name such as "EPSG:4326"/);
});

test('bundled without node_modules (the chunk Lambda), the module loads and serves the common codes from its bundle', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'geo-crs-bundle-'));
  try {
    const entry = path.join(dir, 'entry.ts');
    require('fs').writeFileSync(
      entry,
      `import { lookupCrs, transformBetween } from ${JSON.stringify(path.join(ROOT, 'containers/worker/src/operations/geo/crs'))};\n` +
        `const utm = lookupCrs('EPSG:32633'); const wgs = lookupCrs('EPSG:4326');\n` +
        `if (typeof utm === 'string' || typeof wgs === 'string') throw new Error(String(utm) + String(wgs));\n` +
        `console.log(JSON.stringify({ utm: transformBetween(wgs, utm)([15, 0]), other: lookupCrs('EPSG:2000') }));\n`,
    );
    const bundle = path.join(dir, 'bundle.js');
    buildSync({ entryPoints: [entry], bundle: true, platform: 'node', outfile: bundle, logLevel: 'silent' });
    const out = JSON.parse(execFileSync(process.execPath, [bundle], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } }));
    expect(out.utm[0]).toBeCloseTo(500000, 3);
    expect(out.other).toMatch(/EPSG:2000 is not among the common definitions bundled here/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
