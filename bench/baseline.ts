/**
 * The yardstick for the worker engine: a minimal hand-written streaming loop (read, split lines,
 * JSON.parse, the same aggregate-defects aggregation) with none of the engine's guarantees (no
 * validation, no offsets, no rejects, no chunk rule, no checkpoints). It must produce the same result
 * on clean data; the bench checks that before comparing speeds.
 */
export async function baselineAggregate(source: AsyncIterable<Buffer>): Promise<Record<string, unknown>> {
  const segments = new Map<string, { count: number; sev: Record<string, number>; dc: number; ds: number; dm: number }>();
  const days = new Map<string, number>();
  const cells = new Map<string, number>();
  let records = 0;
  let carry = '';
  const add = (line: string) => {
    if (line.length === 0) return;
    const r = JSON.parse(line);
    records++;
    let s = segments.get(r.segmentId);
    if (!s) {
      s = { count: 0, sev: { low: 0, medium: 0, high: 0, critical: 0 }, dc: 0, ds: 0, dm: -1 };
      segments.set(r.segmentId, s);
    }
    s.count++;
    s.sev[r.severity]++;
    if (typeof r.depthMm === 'number') {
      s.dc++;
      s.ds += Math.round(r.depthMm * 1000);
      if (r.depthMm > s.dm) s.dm = r.depthMm;
    }
    const day = r.detectedAt.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + 1);
    const cell = `${Math.floor(r.lat * 100)}:${Math.floor(r.lon * 100)}`;
    cells.set(cell, (cells.get(cell) ?? 0) + 1);
  };
  for await (const chunk of source) {
    const lines = (carry + chunk.toString('utf8')).split('\n');
    carry = lines.pop()!;
    for (const line of lines) add(line);
  }
  add(carry);

  const out: Record<string, unknown> = {};
  for (const [id, s] of [...segments].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    out[id] = {
      count: s.count,
      severity: s.sev,
      depthMm: { count: s.dc, sum: s.ds / 1000, sumUm: s.ds, mean: s.dc ? Math.round(s.ds / s.dc) / 1000 : null, max: s.dc ? s.dm : null },
    };
  }
  const cellKey = (k: string) => k.split(':').map(Number);
  const sortedCells = [...cells].sort((a, b) => {
    const [x1, y1] = cellKey(a[0]);
    const [x2, y2] = cellKey(b[0]);
    return x1 - x2 || y1 - y2;
  });
  return {
    operation: 'aggregate-defects',
    records,
    rejected: 0,
    segments: out,
    days: Object.fromEntries([...days].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    heatmap: { cellDeg: 0.01, cells: Object.fromEntries(sortedCells) },
  };
}

/**
 * A second, tighter hand-written loop: newline search on the raw Buffer, one decode per line, numeric
 * heatmap keys. Still no validation, offsets, rejects, chunk rule or checkpoints: the ratio to it is the
 * price of those guarantees.
 */
export async function tightAggregate(source: AsyncIterable<Buffer>): Promise<Record<string, unknown>> {
  const segments = new Map<string, { count: number; sev: Record<string, number>; dc: number; ds: number; dm: number }>();
  const days = new Map<string, number>();
  const cells = new Map<number, number>();
  let records = 0;
  const add = (buf: Buffer, s: number, e: number) => {
    if (e === s) return;
    const r = JSON.parse(buf.toString('utf8', s, e));
    records++;
    let seg = segments.get(r.segmentId);
    if (!seg) {
      seg = { count: 0, sev: { low: 0, medium: 0, high: 0, critical: 0 }, dc: 0, ds: 0, dm: -1 };
      segments.set(r.segmentId, seg);
    }
    seg.count++;
    seg.sev[r.severity]++;
    if (typeof r.depthMm === 'number') {
      seg.dc++;
      seg.ds += Math.round(r.depthMm * 1000);
      if (r.depthMm > seg.dm) seg.dm = r.depthMm;
    }
    const day = r.detectedAt.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + 1);
    const cell = (Math.floor(r.lat * 100) + 9000) * 36001 + Math.floor(r.lon * 100) + 18000;
    cells.set(cell, (cells.get(cell) ?? 0) + 1);
  };
  let carry: Buffer | undefined;
  for await (const chunk of source) {
    let buf: Buffer = chunk;
    if (carry) buf = Buffer.concat([carry, buf]);
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl === -1) break;
      add(buf, pos, nl);
      pos = nl + 1;
    }
    carry = pos < buf.length ? buf.subarray(pos) : undefined;
  }
  if (carry) add(carry, 0, carry.length);

  const out: Record<string, unknown> = {};
  for (const [id, s] of [...segments].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    out[id] = {
      count: s.count,
      severity: s.sev,
      depthMm: { count: s.dc, sum: s.ds / 1000, sumUm: s.ds, mean: s.dc ? Math.round(s.ds / s.dc) / 1000 : null, max: s.dc ? s.dm : null },
    };
  }
  const cellsOut: Record<string, number> = {};
  for (const [k, v] of [...cells].sort((a, b) => a[0] - b[0])) {
    cellsOut[`${Math.floor(k / 36001) - 9000}:${(k % 36001) - 18000}`] = v;
  }
  return {
    operation: 'aggregate-defects',
    records,
    rejected: 0,
    segments: out,
    days: Object.fromEntries([...days].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    heatmap: { cellDeg: 0.01, cells: cellsOut },
  };
}
