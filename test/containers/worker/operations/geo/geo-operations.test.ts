import { S3Client } from '@aws-sdk/client-s3';
import { ChunkSpec, mergeResults, processChunk } from '../../../../../containers/worker/src/engine';
import type { DissolveDocument, StatsDocument } from '../../../../../containers/worker/src/operations/geo/operations';
import { placementOf } from '../../../../../containers/worker/src/operations/placement';
import { getOperation } from '../../../../../containers/worker/src/operations/registry';
import { createBucket, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../../support/s3';

/**
 * The geoprocessing operations through the worker against moto_server, each checked against an
 * independent computation: closed-form areas and lengths on the sphere turf measures on, the circle
 * a buffer approximates, the published formulas and coordinates of Web Mercator and UTM.
 */
const BUCKET = uniqueBucket('worker-geo');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

/** turf measures areas and lengths on a sphere of the mean Earth radius; Web Mercator's sphere is WGS 84's semi-major axis. */
const AREA_RADIUS = 6371008.8;
const LENGTH_RADIUS = 6371008.8;
const MERCATOR_RADIUS = 6378137;
const rad = (deg: number) => (deg * Math.PI) / 180;

/** Area of the lon/lat rectangle [w,s,e,n] on a sphere of radius R: R^2 * dLon * (sin n - sin s). */
function rectangleArea([w, s, e, n]: number[], r = AREA_RADIUS): number {
  return r * r * rad(e - w) * (Math.sin(rad(n)) - Math.sin(rad(s)));
}

function square([w, s, e, n]: number[]): { type: 'Polygon'; coordinates: number[][][] } {
  return { type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
}

function feature(geometry: unknown, properties: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'Feature', properties, geometry, ...extra });
}

interface Run {
  status: string;
  lines: Record<string, unknown>[];
  rawLines: string[];
  rejects: { offset: number; reason: string; raw: string }[];
  document: Record<string, unknown>;
}

let n = 0;
async function run(operation: string, body: string, config: unknown, input: Partial<ChunkSpec['input']> = {}, name = 'in.geojsonl'): Promise<Run> {
  const id = `${operation}-${n++}`;
  const key = input.key ?? `in/${id}/${name}`;
  if (!input.key) await put(s3, BUCKET, key, body);
  const spec: ChunkSpec = {
    jobId: id,
    operation,
    operationConfig: config,
    input: { bucket: BUCKET, ...input, key },
    output: { bucket: BUCKET, key: `out/${id}/result` },
    maxRejectRatio: 1,
  };
  const r = await processChunk(spec, { s3In: s3, s3Out: s3 });
  const op = getOperation(operation);
  const records = op.kind === 'records' && op.output === 'records';
  const text = records ? (await getBuffer(s3, BUCKET, spec.output.key)).toString() : '';
  const rawLines = text.split('\n').filter((l) => l.length > 0);
  const rejectText = (await getBuffer(s3, BUCKET, `${spec.output.key}.rejects.jsonl`)).toString();
  return {
    status: r.status,
    rawLines,
    lines: rawLines.map((l) => JSON.parse(l)),
    rejects: rejectText.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l)),
    document: records ? r.document! : await getJsonObject(s3, BUCKET, spec.output.key),
  };
}

describe('measure', () => {
  test("a lon/lat square's area is the closed-form spherical area; a meridian segment's length is R times the angle", async () => {
    const boxes = [[0, 0, 1, 1], [10, 40, 10.01, 40.01], [-75, -60, -70, -55]];
    const body = [...boxes.map((b) => feature(square(b))), feature({ type: 'LineString', coordinates: [[5, 0], [5, 1], [5, 3]] })].join('\n') + '\n';
    const { lines, rejects } = await run('measure', body, {});
    expect(rejects).toEqual([]);
    boxes.forEach((b, i) => {
      const props = lines[i].properties as { area_m2: number; length_m: number };
      expect(Math.abs(props.area_m2 / rectangleArea(b) - 1)).toBeLessThan(1e-9);
    });
    const line = lines[3].properties as { area_m2: number; length_m: number };
    expect(line.area_m2).toBe(0);
    expect(line.length_m).toBeCloseTo(LENGTH_RADIUS * rad(3), 3);
    // A 0.01-degree square at 40N is nearly flat: 0.01 degree of meridian by 0.01 degree of the parallel at 40.005N.
    const side = LENGTH_RADIUS * rad(0.01);
    expect(Math.abs((lines[1].properties as { area_m2: number }).area_m2 / (side * side * Math.cos(rad(40.005))) - 1)).toBeLessThan(1e-6);
  });

  test('writes to the configured property names and keeps the other properties', async () => {
    const { lines } = await run('measure', feature(square([0, 0, 1, 1]), { id: 7 }) + '\n', { areaProperty: 'a', lengthProperty: 'perimeter' });
    const props = lines[0].properties as Record<string, number>;
    expect(Object.keys(props)).toEqual(['id', 'a', 'perimeter']);
    // The perimeter of the 1-degree square at the equator: three 1-degree great-circle arcs plus the parallel at 1N.
    expect(props.perimeter).toBeGreaterThan(LENGTH_RADIUS * rad(4) * 0.9999);
    expect(props.perimeter).toBeLessThan(LENGTH_RADIUS * rad(4) * 1.0001);
  });
});

describe('buffer', () => {
  test("a point's buffer is a circle: its area is pi r^2 within 0.5 %, for metres and kilometres", async () => {
    const body = [feature({ type: 'Point', coordinates: [13.4, 52.5] }), feature({ type: 'Point', coordinates: [-3, 0] })].join('\n') + '\n';
    const m = await run('buffer', body, { distance: 1000, steps: 32 });
    const km = await run('buffer', body, { distance: 2, units: 'kilometers', steps: 32 });
    for (const [result, radius] of [[m, 1000], [km, 2000]] as const) {
      expect(result.rejects).toEqual([]);
      expect(result.lines).toHaveLength(2);
      const measured = await run('measure', result.rawLines.join('\n') + '\n', {});
      for (const l of measured.lines) {
        expect(Math.abs((l.properties as { area_m2: number }).area_m2 / (Math.PI * radius * radius) - 1)).toBeLessThan(0.005);
      }
    }
  });

  test('a negative distance shrinks a polygon, and one shrunk away is dropped, not rejected', async () => {
    const body = [feature(square([0, 0, 0.1, 0.1])), feature(square([1, 1, 1.001, 1.001]))].join('\n') + '\n';
    const r = await run('buffer', body, { distance: -1, units: 'kilometers' });
    expect(r.rejects).toEqual([]);
    expect(r.lines).toHaveLength(1);
    expect(r.document).toMatchObject({ records: 2, rejected: 0, dropped: 1 });
    const area = (await run('measure', r.rawLines[0] + '\n', {})).lines[0].properties as { area_m2: number };
    // About (11.13 km - 2 km)^2.
    const side = LENGTH_RADIUS * rad(0.1) - 2000;
    expect(Math.abs(area.area_m2 / (side * side) - 1)).toBeLessThan(0.01);
  });
});

describe('reproject', () => {
  const points = [[0, 0], [2.2945, 48.8584], [-122.4194, 37.7749], [179.9, -85]];

  test('EPSG:4326 -> EPSG:3857 gives the Web Mercator formulas x = R lon, y = R ln tan(pi/4 + lat/2)', async () => {
    const body = points.map((p) => feature({ type: 'Point', coordinates: p })).join('\n') + '\n';
    const { lines, rejects } = await run('reproject', body, { to: 'EPSG:3857' });
    expect(rejects).toEqual([]);
    lines.forEach((l, i) => {
      const [x, y] = (l.geometry as { coordinates: number[] }).coordinates;
      expect(x).toBeCloseTo(MERCATOR_RADIUS * rad(points[i][0]), 4);
      expect(y).toBeCloseTo(MERCATOR_RADIUS * Math.log(Math.tan(Math.PI / 4 + rad(points[i][1]) / 2)), 4);
      expect(l.crs).toEqual({ type: 'name', properties: { name: 'EPSG:3857' } });
    });
    // The published extent of Web Mercator: 180E is 20037508.34 m.
    const edge = await run('reproject', feature({ type: 'Point', coordinates: [180, 0] }) + '\n', { to: 'EPSG:3857' });
    expect((edge.lines[0].geometry as { coordinates: number[] }).coordinates[0]).toBeCloseTo(20037508.34, 2);
  });

  test('EPSG:4326 -> UTM zone 33N (EPSG:32633): on the central meridian E = 500000 and N = 0.9996 x the meridian arc', async () => {
    // Meridian arc from the equator to 45N on the WGS 84 ellipsoid: 4 984 944.378 m (published tables).
    const body = [feature({ type: 'Point', coordinates: [15, 0] }), feature({ type: 'Point', coordinates: [15, 45] })].join('\n') + '\n';
    const { lines } = await run('reproject', body, { from: 'EPSG:4326', to: 'EPSG:32633' });
    const [eq, mid] = lines.map((l) => (l.geometry as { coordinates: number[] }).coordinates);
    expect(eq[0]).toBeCloseTo(500000, 3);
    expect(eq[1]).toBeCloseTo(0, 3);
    expect(mid[0]).toBeCloseTo(500000, 3);
    expect(Math.abs(mid[1] - 0.9996 * 4984944.378)).toBeLessThan(0.01);
  });

  test('a feature naming its own CRS (legacy crs member) is read in it, and round trips back to WGS 84', async () => {
    const there = await run('reproject', feature({ type: 'Polygon', coordinates: square([10, 50, 11, 51]).coordinates }, { k: 1 }) + '\n', { to: 'EPSG:32632' });
    const back = await run('reproject', there.rawLines[0] + '\n', { to: 'EPSG:4326' });
    expect(back.lines[0].crs).toBeUndefined();
    const ring = (back.lines[0].geometry as { coordinates: number[][][] }).coordinates[0];
    square([10, 50, 11, 51]).coordinates[0].forEach((p, i) => {
      expect(ring[i][0]).toBeCloseTo(p[0], 8);
      expect(ring[i][1]).toBeCloseTo(p[1], 8);
    });
  });

  test('unknown CRS and coordinates out of range are rejects at their byte offsets; others go through', async () => {
    const lines = [
      feature({ type: 'Point', coordinates: [1, 1] }),
      feature({ type: 'Point', coordinates: [1, 1] }, {}, { crs: { type: 'name', properties: { name: 'EPSG:999999' } } }),
      feature({ type: 'Point', coordinates: [1, 95] }),
      feature({ type: 'Point', coordinates: [0, 90] }),
      feature({ type: 'Point', coordinates: [1, 1] }, {}, { crs: { type: 'name', properties: { name: 'EPSG:3857' } } }),
    ];
    const body = lines.join('\n') + '\n';
    const { rejects, lines: out } = await run('reproject', body, { to: 'EPSG:3857' });
    expect(out).toHaveLength(2);
    expect(rejects.map((r) => [r.offset, r.reason])).toEqual([
      [body.indexOf(lines[1]), expect.stringContaining('unknown CRS "EPSG:999999"')],
      [body.indexOf(lines[2]), expect.stringContaining('coordinates out of range: [1, 95]')],
      [body.indexOf(lines[3]), 'coordinates out of range: [0, 90] in EPSG:4326 has no finite position in EPSG:3857'],
    ]);
  });

  test('an unknown CRS in the configuration stops the job before reading, naming the field and the value', async () => {
    await expect(run('reproject', '\n', { to: 'EPSG:999999' })).rejects.toThrow(/reproject config: to: unknown CRS "EPSG:999999"/);
    await expect(run('reproject', '\n', { to: 'WGS84' })).rejects.toThrow(/reproject config: to: a CRS must be named "EPSG:<code>"/);
    await expect(run('reproject', '\n', {})).rejects.toThrow(/reproject config: to:/);
  });
});

describe('simplify and clip', () => {
  test('simplify drops positions within the tolerance (Douglas-Peucker) and keeps the corners', async () => {
    const line = { type: 'LineString', coordinates: [[0, 0], [1, 0.0001], [2, 0], [2, 1], [2.00001, 2]] };
    const { lines } = await run('simplify', feature(line) + '\n', { tolerance: 0.01 });
    expect((lines[0].geometry as { coordinates: number[][] }).coordinates).toEqual([[0, 0], [2, 0], [2.00001, 2]]);
  });

  test('clip to a bbox keeps the part inside: half a square has half its rows of area; points outside are dropped', async () => {
    const body = [
      feature(square([0, 0, 2, 1]), { id: 'a' }),
      feature({ type: 'Point', coordinates: [0.5, 0.5] }, { id: 'b' }),
      feature({ type: 'Point', coordinates: [5, 5] }, { id: 'c' }),
      feature({ type: 'LineString', coordinates: [[-1, 0.5], [3, 0.5]] }, { id: 'd' }),
      feature(square([10, 10, 11, 11]), { id: 'e' }),
    ].join('\n') + '\n';
    const r = await run('clip', body, { bbox: [0, 0, 1, 1] });
    expect(r.lines.map((l) => (l.properties as { id: string }).id)).toEqual(['a', 'b', 'd']);
    expect(r.document).toMatchObject({ records: 5, rejected: 0, dropped: 2 });
    const area = (await run('measure', r.rawLines[0] + '\n', {})).lines[0].properties as { area_m2: number };
    expect(Math.abs(area.area_m2 / rectangleArea([0, 0, 1, 1]) - 1)).toBeLessThan(1e-9);
    expect((r.lines[2].geometry as { coordinates: number[][] }).coordinates).toEqual([[0, 0.5], [1, 0.5]]);
  });

  test('clip to a polygon intersects polygons and filters points; lines are a reject that says to use a bbox', async () => {
    const clipTo = square([0, 0, 1, 1]);
    const lines = [
      feature(square([0.5, 0.5, 1.5, 1.5])),
      feature({ type: 'Point', coordinates: [0.25, 0.25] }),
      feature({ type: 'LineString', coordinates: [[0, 0], [1, 1]] }),
    ];
    const body = lines.join('\n') + '\n';
    const r = await run('clip', body, { polygon: clipTo });
    expect(r.lines).toHaveLength(2);
    expect(r.rejects).toEqual([{ offset: body.indexOf(lines[2]), reason: 'clip to a polygon takes Point and Polygon geometries (a LineString can be clipped to a bbox)', raw: lines[2] }]);
    const area = (await run('measure', r.rawLines[0] + '\n', {})).lines[0].properties as { area_m2: number };
    expect(Math.abs(area.area_m2 / rectangleArea([0.5, 0.5, 1, 1]) - 1)).toBeLessThan(1e-6);
  });

  test('clip config must give exactly one of bbox or polygon, in range', async () => {
    await expect(run('clip', '\n', {})).rejects.toThrow(/clip config: \(root\): give exactly one of bbox or polygon/);
    await expect(run('clip', '\n', { bbox: [0, 0, 200, 1] })).rejects.toThrow(/clip config: bbox\.2: /);
    await expect(run('clip', '\n', { polygon: { type: 'Polygon', coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]] } })).rejects.toThrow(
      /clip config: polygon: invalid geometry: Polygon ring crosses itself/,
    );
  });
});

describe('rejects', () => {
  test('records that are not valid GeoJSON features are rejects with their byte offsets, in every operation', async () => {
    const good = feature(square([0, 0, 1, 1]), { k: 'x' });
    const bad: [string, string][] = [
      ['{"type":"Point","coordinates":[1,2]}', 'record is not a GeoJSON Feature'],
      [feature(null), 'feature has no geometry'],
      [feature({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1]]] }), 'invalid geometry: Polygon is not valid'],
      [feature({ type: 'Polygon', coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]] }), 'invalid geometry: Polygon ring crosses itself (1 self-intersection)'],
      [feature({ type: 'Point', coordinates: ['1', 2] }), 'invalid geometry: position ["1",2] has a value that is not a finite number'],
      [feature({ type: 'Circle', coordinates: [1, 2] }), 'invalid geometry: type "Circle" is not one of'],
      [feature({ type: 'LineString', coordinates: [[0, 0], [181, 0]] }), 'coordinates out of range: [181, 0]'],
      ['{"type":"Feature",', 'invalid JSON'],
    ];
    const all = [good, ...bad.map(([line]) => line), good];
    const body = all.join('\n') + '\n';
    const offsetOf = (line: string) => all.slice(0, all.indexOf(line)).reduce((s, l) => s + l.length + 1, 0);
    for (const [op, config] of [['measure', {}], ['buffer', { distance: 10 }], ['simplify', { tolerance: 0.1 }], ['clip', { bbox: [-1, -1, 2, 2] }], ['stats', { by: 'k' }], ['dissolve', { by: 'k' }], ['reproject', { to: 'EPSG:3857' }]]) {
      const r = await run(op as string, body, config);
      expect([op, r.status, r.document.records]).toEqual([op, 'succeeded', 2]);
      const expected = bad;
      expect([op, r.rejects.map((x) => x.offset)]).toEqual([op, expected.map(([line]) => offsetOf(line))]);
      r.rejects.forEach((x, i) => expect([op, x.reason.startsWith(expected[i][1])]).toEqual([op, true]));
    }
  });
});

describe('aggregating operations: stats and dissolve', () => {
  const cells: [string, number[]][] = [
    ['a', [0, 0, 1, 1]],
    ['a', [1, 0, 2, 1]],
    ['b', [0, 1, 1, 2]],
    ['a', [0.5, 0.5, 1.5, 1.5]],
    ['b', [1, 1, 2, 2]],
    ['c', [30, 30, 31, 31]],
  ];
  const body = cells.map(([k, b], i) => feature(square(b), { k, i })).join('\n') + '\n' + feature({ type: 'LineString', coordinates: [[0, 0], [0, 2]] }, { k: 'a' }) + '\n';

  async function chunked(op: string, config: unknown, name: string): Promise<{ whole: Record<string, unknown>; merged: Record<string, unknown> }> {
    const key = `in/${name}.geojsonl`;
    await put(s3, BUCKET, key, body);
    const whole = (await run(op, '', config, { key })).document;
    const cuts = [0, 100, Math.floor(body.length / 2), body.length - 50, body.length];
    const parts: Record<string, unknown>[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) parts.push((await run(op, '', config, { key, startByte: cuts[i], endByte: cuts[i + 1] })).document);
    // Merged in another order than read: the merge is associative and commutative.
    return { whole, merged: mergeResults(op, [parts[2], parts[0], parts[3], parts[1]]) };
  }

  test('stats counts and sums areas and lengths per property value; chunk results merge to the whole', async () => {
    const { whole, merged } = await chunked('stats', { by: 'k' }, 'stats');
    const doc = whole as unknown as StatsDocument;
    expect(doc.groups.map((g) => [g.value, g.count])).toEqual([['a', 4], ['b', 2], ['c', 1]]);
    const expectArea = (k: string) => cells.filter(([c]) => c === k).reduce((s, [, b]) => s + rectangleArea(b), 0);
    for (const g of doc.groups) expect(Math.abs(g.area_m2 / expectArea(g.value as string) - 1)).toBeLessThan(1e-9);
    expect(doc.records).toBe(7);
    const m = merged as unknown as StatsDocument;
    expect(m.groups.map((g) => [g.value, g.count])).toEqual(doc.groups.map((g) => [g.value, g.count]));
    m.groups.forEach((g, i) => {
      expect(g.area_m2).toBeCloseTo(doc.groups[i].area_m2, 0);
      expect(g.length_m).toBeCloseTo(doc.groups[i].length_m, 3);
    });
  });

  test('dissolve unions polygons per property value (overlaps counted once); chunk results merge to the whole', async () => {
    const { whole, merged } = await chunked('dissolve', { by: 'k' }, 'dissolve');
    const doc = whole as unknown as DissolveDocument;
    expect(doc.type).toBe('FeatureCollection');
    expect(doc.features.map((f) => [f.properties.value, f.properties.count])).toEqual([['a', 3], ['b', 2], ['c', 1]]);
    // The line of group a is a reject: dissolve unions polygons.
    expect(doc.rejected).toBe(1);
    const measure = async (fc: DissolveDocument) =>
      (await run('measure', fc.features.map((f) => JSON.stringify(f)).join('\n') + '\n', {})).lines.map((l) => (l.properties as { area_m2: number }).area_m2);
    // a: the 2x1 rectangle plus the part of [0.5,1.5]^2 above latitude 1.
    const expected = [rectangleArea([0, 0, 2, 1]) + rectangleArea([0.5, 1, 1.5, 1.5]), rectangleArea([0, 1, 2, 2]), rectangleArea([30, 30, 31, 31])];
    const wholeAreas = await measure(doc);
    wholeAreas.forEach((a, i) => expect(Math.abs(a / expected[i] - 1)).toBeLessThan(1e-6));
    const mergedDoc = merged as unknown as DissolveDocument;
    expect(mergedDoc.features.map((f) => [f.properties.value, f.properties.count])).toEqual([['a', 3], ['b', 2], ['c', 1]]);
    (await measure(mergedDoc)).forEach((a, i) => expect(Math.abs(a / wholeAreas[i] - 1)).toBeLessThan(1e-9));
  });

  test('a property value that is an object is a reject; a missing one groups under null', async () => {
    const lines = [feature(square([0, 0, 1, 1]), { k: { nested: 1 } }), feature(square([0, 0, 1, 1]), {})];
    const text = lines.join('\n') + '\n';
    const r = await run('stats', text, { by: 'k' });
    expect(r.rejects.map((x) => [x.offset, x.reason])).toEqual([[0, 'property k is an object; features are grouped by a string, number, boolean or null']]);
    expect((r.document as unknown as StatsDocument).groups.map((g) => [g.value, g.count])).toEqual([[null, 1]]);
  });
});

describe('chunked geojsonseq', () => {
  test('measure and reproject over byte-range chunks give exactly the output and rejects of the whole object', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      const x = (i % 50) * 0.5 - 10;
      const y = Math.floor(i / 50) * 0.5;
      lines.push(i % 37 === 5 ? feature({ type: 'Point', coordinates: [x, 100] }, { i }) : i % 2 ? feature(square([x, y, x + 0.3, y + 0.2]), { i }) : feature({ type: 'Point', coordinates: [x, y] }, { i }));
    }
    const body = lines.join('\n') + '\n';
    const key = 'in/chunked/features.geojsonl';
    await put(s3, BUCKET, key, body);
    for (const [op, config] of [['measure', {}], ['reproject', { to: 'EPSG:32631' }]] as const) {
      const whole = await run(op, '', config, { key });
      const cuts = [0, 1, 777, 4096, Math.floor(body.length / 3), body.indexOf(lines[200]), body.length];
      const parts: Run[] = [];
      for (let i = 0; i + 1 < cuts.length; i++) parts.push(await run(op, '', config, { key, startByte: cuts[i], endByte: cuts[i + 1] }));
      expect(parts.flatMap((p) => p.rawLines)).toEqual(whole.rawLines);
      expect(parts.flatMap((p) => p.rejects)).toEqual(whole.rejects);
      expect(whole.rawLines).toHaveLength(300 - whole.rejects.length);
      expect(whole.rejects.map((r) => r.offset)).toEqual(lines.filter((l) => l.includes('100]')).map((l) => body.indexOf(l)));
      expect(mergeResults(op, parts.map((p) => p.document))).toEqual(whole.document);
    }
  });
});

test('each geo operation declares where it runs; dissolve, which holds unions, asks for more memory', () => {
  for (const name of ['reproject', 'buffer', 'simplify', 'clip', 'measure', 'stats']) {
    expect(placementOf(getOperation(name))).toMatchObject({ runsOn: 'EC2', vcpus: 1, image: 'worker' });
  }
  expect(placementOf(getOperation('dissolve'))).toEqual({ runsOn: 'EC2', vcpus: 2, memoryMiB: 8192, image: 'worker' });
});
