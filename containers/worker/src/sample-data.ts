import { createWriteStream } from 'fs';
import { once } from 'events';

/**
 * Seeded road-defect records for tests, benchmarks and `npm start`: the same seed gives the same bytes.
 * Positions cluster around a few cities with a fixed point per segment, so the number of distinct
 * segments, days and heatmap cells stays bounded however many records are generated (as in real data).
 */
export type SampleFormat = 'jsonl' | 'csv';

export interface SampleOptions {
  count: number;
  seed?: number;
  format?: SampleFormat;
  /** Distinct segment ids; default 5,000. */
  segments?: number;
  /** Share of records with a depthMm; default 0.8. */
  depthShare?: number;
  /** Records per yielded chunk; default 10,000. */
  batch?: number;
}

/** mulberry32: tiny, fast, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CITIES: [number, number][] = [
  [52.52, 13.405],
  [48.137, 11.575],
  [50.11, 8.682],
  [53.551, 9.993],
  [-33.869, 151.209],
  [40.713, -74.006],
];
const SEVERITY_WEIGHTS: [string, number][] = [
  ['low', 0.5],
  ['medium', 0.3],
  ['high', 0.15],
  ['critical', 0.05],
];
const YEAR_START = Date.UTC(2024, 0, 1);
const YEAR_MS = 366 * 24 * 3600 * 1000;

export const CSV_HEADER = 'segmentId,severity,lat,lon,detectedAt,depthMm';

export interface DefectRecord {
  segmentId: string;
  severity: string;
  lat: number;
  lon: number;
  detectedAt: string;
  depthMm?: number;
}

/** Yields the records themselves (for tests that compute expected results independently). */
export function* defectRecords(options: SampleOptions): Generator<DefectRecord> {
  const rnd = prng(options.seed ?? 42);
  const nSegments = options.segments ?? 5000;
  const depthShare = options.depthShare ?? 0.8;
  const segRnd = prng((options.seed ?? 42) ^ 0x5eed);
  const segPos: [number, number][] = [];
  for (let i = 0; i < nSegments; i++) {
    const c = CITIES[i % CITIES.length];
    segPos.push([c[0] + (segRnd() - 0.5) * 0.2, c[1] + (segRnd() - 0.5) * 0.3]);
  }
  for (let i = 0; i < options.count; i++) {
    const s = Math.floor(rnd() * nSegments);
    const u = rnd();
    let severity = 'critical';
    let acc = 0;
    for (const [name, w] of SEVERITY_WEIGHTS) {
      acc += w;
      if (u < acc) {
        severity = name;
        break;
      }
    }
    const [plat, plon] = segPos[s];
    const rec: DefectRecord = {
      segmentId: `seg-${String(s).padStart(6, '0')}`,
      severity,
      lat: Math.round((plat + (rnd() - 0.5) * 0.002) * 1e6) / 1e6,
      lon: Math.round((plon + (rnd() - 0.5) * 0.002) * 1e6) / 1e6,
      detectedAt: new Date(YEAR_START + Math.floor(rnd() * YEAR_MS)).toISOString(),
    };
    if (rnd() < depthShare) rec.depthMm = Math.round(rnd() * 1200) / 10;
    yield rec;
  }
}

export function formatRecord(rec: DefectRecord, format: SampleFormat): string {
  if (format === 'jsonl') return JSON.stringify(rec);
  return `${rec.segmentId},${rec.severity},${rec.lat},${rec.lon},${rec.detectedAt},${rec.depthMm ?? ''}`;
}

/** The file's bytes in batches (CSV starts with its header row); every line ends with "\n". */
export function* sampleChunks(options: SampleOptions): Generator<Buffer> {
  const format = options.format ?? 'jsonl';
  const batch = options.batch ?? 10_000;
  let lines: string[] = format === 'csv' ? [CSV_HEADER] : [];
  for (const rec of defectRecords(options)) {
    lines.push(formatRecord(rec, format));
    if (lines.length >= batch) {
      yield Buffer.from(lines.join('\n') + '\n');
      lines = [];
    }
  }
  if (lines.length > 0) yield Buffer.from(lines.join('\n') + '\n');
}

export function sampleBuffer(options: SampleOptions): Buffer {
  return Buffer.concat([...sampleChunks(options)]);
}

/** Writes a sample file with backpressure (constant memory for any count). Returns its size in bytes. */
export async function writeSampleFile(path: string, options: SampleOptions): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (const chunk of sampleChunks(options)) {
    bytes += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}
