/**
 * Geoprocessing benchmark (`npm run bench:geo`, also at the end of `npm run bench`;
 * `npx tsx bench/geo-bench.ts [--features N] [--rounds R]`).
 *
 * 1. Throughput of `reproject` (EPSG:4326 -> EPSG:3857) and `measure` through the worker's engine
 *    (processStream: the same scan, step, rejects and output writing as a chunk) on N generated features,
 *    half points, half small polygons, as newline-delimited GeoJSON; against minimal loops over the same
 *    file in the same run that call the same library functions:
 *    - "same calls": read, split lines, JSON.parse, the validity checks the operation makes (turf
 *      booleanValid and kinks for polygons), proj4 forward / turf area + length, JSON.stringify;
 *    - "transform only": the same without the validity checks.
 *    In rotating order, best of R rounds. Each pair must agree on the number of output features and bytes.
 * 2. Memory: peak RSS of `measure` at N/2 and N features, each in a fresh process (`--child`).
 * Prints a Markdown table and the load average.
 */
import area from '@turf/area';
import booleanValid from '@turf/boolean-valid';
import kinks from '@turf/kinks';
import length from '@turf/length';
import { spawnSync } from 'child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'fs';
import type { Feature, Geometry, Polygon } from 'geojson';
import * as os from 'os';
import * as path from 'path';
import proj4 from 'proj4';
import { processStream } from '../containers/worker/src/engine';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const FEATURES = Number(arg('--features', '1000000'));
const ROUNDS = Number(arg('--rounds', '2'));
const DATA_DIR = path.resolve(__dirname, 'out');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** N features, alternating a point and a small square (5 positions), deterministic. */
async function sample(count: number): Promise<string> {
  mkdirSync(DATA_DIR, { recursive: true });
  const file = path.join(DATA_DIR, `geo-${count}.geojsonl`);
  if (existsSync(file)) return file;
  const out = createWriteStream(file);
  let x = 0x9e3779b9;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  let batch = '';
  for (let i = 0; i < count; i++) {
    const lon = Math.round((rand() * 340 - 170) * 1e6) / 1e6;
    const lat = Math.round((rand() * 160 - 80) * 1e6) / 1e6;
    const d = 0.001 + Math.round(rand() * 1e4) / 1e6;
    const geometry =
      i % 2 === 0
        ? { type: 'Point', coordinates: [lon, lat] }
        : { type: 'Polygon', coordinates: [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]] };
    batch += JSON.stringify({ type: 'Feature', properties: { id: i, kind: i % 2 ? 'parcel' : 'site' }, geometry }) + '\n';
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await new Promise<void>((r) => out.once('drain', () => r()));
      batch = '';
    }
  }
  out.end(batch);
  await new Promise<void>((r) => out.once('finish', () => r()));
  return file;
}

const stream = (file: string) => createReadStream(file, { highWaterMark: 1 << 20 });

interface Tally {
  features: number;
  bytes: number;
}

async function engine(op: 'reproject' | 'measure', file: string): Promise<Tally> {
  const tally: Tally = { features: 0, bytes: 0 };
  const config = op === 'reproject' ? { to: 'EPSG:3857' } : {};
  await processStream(op, stream(file), {
    format: 'jsonl',
    operationConfig: config,
    onRecord: (line) => {
      tally.features++;
      tally.bytes += line.length;
    },
    onReject: (line) => {
      throw new Error(`unexpected reject: ${line}`);
    },
  });
  return tally;
}

const WGS84 = '+proj=longlat +datum=WGS84 +no_defs +type=crs';
const MERCATOR = '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs +type=crs';

/** The minimal loop: lines, JSON.parse, (checks), the library call, JSON.stringify. */
async function minimal(op: 'reproject' | 'measure', file: string, checks: boolean): Promise<Tally> {
  const tally: Tally = { features: 0, bytes: 0 };
  const converter = proj4(WGS84, MERCATOR);
  let rest = '';
  const handle = (line: string) => {
    if (line.length === 0) return;
    const f = JSON.parse(line) as Feature<Geometry>;
    const g = f.geometry;
    if (checks && g.type === 'Polygon') {
      if (!booleanValid(f) || kinks(f as Feature<Polygon>).features.length > 0) throw new Error('invalid');
    }
    if (op === 'reproject') {
      if (g.type === 'Point') {
        const q = converter.forward(g.coordinates);
        g.coordinates[0] = q[0];
        g.coordinates[1] = q[1];
      } else if (g.type === 'Polygon') {
        for (const ring of g.coordinates) {
          for (const p of ring) {
            const q = converter.forward(p);
            p[0] = q[0];
            p[1] = q[1];
          }
        }
      }
      (f as unknown as { crs: unknown }).crs = { type: 'name', properties: { name: 'EPSG:3857' } };
    } else {
      const props = f.properties as Record<string, unknown>;
      props.area_m2 = area(f);
      props.length_m = length(f, { units: 'meters' });
    }
    const out = JSON.stringify(f) + '\n';
    tally.features++;
    tally.bytes += out.length;
  };
  for await (const chunk of stream(file)) {
    const text = rest + (chunk as Buffer).toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const line of lines) handle(line);
  }
  handle(rest);
  return tally;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

async function childMain(file: string): Promise<void> {
  const t = await engine('measure', file);
  console.log(JSON.stringify({ features: t.features, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function rssOf(file: string): { features: number; maxRssMb: number } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rss child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function main(): Promise<void> {
  const started = Date.now();
  const file = await sample(FEATURES);
  const half = await sample(Math.floor(FEATURES / 2));
  const rows: [string, string][] = [
    ['machine', `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}`],
    ['input', `${fmt(FEATURES)} features (half points, half 5-position polygons), newline-delimited GeoJSON, ${fmt(statSync(file).size / 1e6)} MB`],
  ];
  const rate = (ms: number) => (FEATURES * 1000) / ms;
  for (const op of ['reproject', 'measure'] as const) {
    const best = { engine: Infinity, same: Infinity, only: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      // The machine is shared: the order rotates per round so no contender always runs first.
      const runs = {
        engine: () => timed(() => engine(op, file)),
        same: () => timed(() => minimal(op, file, true)),
        only: () => timed(() => minimal(op, file, false)),
      };
      const order = (['engine', 'same', 'only'] as const).map((_, k, all) => all[(round + k) % all.length]);
      const done: Partial<Record<keyof typeof runs, { ms: number; value: Tally }>> = {};
      for (const who of order) done[who] = await runs[who]();
      const [e, s, o] = [done.engine!, done.same!, done.only!];
      for (const other of [s.value, o.value]) {
        if (other.features !== e.value.features || other.bytes !== e.value.bytes) {
          throw new Error(`${op}: engine wrote ${e.value.features} features / ${e.value.bytes} bytes, the loop ${other.features} / ${other.bytes}`);
        }
      }
      best.engine = Math.min(best.engine, e.ms);
      best.same = Math.min(best.same, s.ms);
      best.only = Math.min(best.only, o.ms);
      console.error(`${op} round ${round + 1}: engine ${fmt(e.ms)} ms, same-calls loop ${fmt(s.ms)} ms, transform-only loop ${fmt(o.ms)} ms`);
    }
    rows.push(
      [`\`${op}\` through the engine, best of ${ROUNDS}`, `${fmt(rate(best.engine))} features/s`],
      [`minimal loop, same library calls (checks + ${op === 'reproject' ? 'proj4' : 'turf area/length'})`, `${fmt(rate(best.same))} features/s`],
      [`**\`${op}\` engine / same-calls loop** (goal >= 0.8)`, `**${(best.same / best.engine).toFixed(2)}**`],
      [`\`${op}\` engine / transform-only loop (no validity checks)`, `${(best.only / best.engine).toFixed(2)}`],
    );
  }
  const small = rssOf(half);
  const big = rssOf(file);
  const growth = (big.maxRssMb / small.maxRssMb - 1) * 100;
  rows.push(
    [`peak RSS, \`measure\`, ${fmt(small.features)} / ${fmt(big.features)} features (fresh processes)`, `${small.maxRssMb.toFixed(0)} MB / ${big.maxRssMb.toFixed(0)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} % for twice the input)`],
    ['load average at end', os.loadavg().map((l) => l.toFixed(1)).join(' / ')],
    ['bench wall time', `${fmt((Date.now() - started) / 1000)} s`],
  );
  console.log(['| geo measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n'));
}

if (args[0] === '--child') {
  childMain(args[1]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
