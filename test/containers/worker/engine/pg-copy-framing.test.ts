import * as net from 'net';
import { Client } from 'pg';
import { processQuery } from '../../../../containers/worker/src/engine/postgres';
import { CopyOutReader, CopyTextScanner } from '../../../../containers/worker/src/engine/pg-copy';
import { createTestDatabase, dropTestDatabase, pgTestPort } from '../../../support/postgres';

/**
 * CopyOutReader (the COPY OUT protocol read straight off the socket) against the real PostgreSQL of the
 * jest run, through a loopback proxy that holds the server's whole answer to a COPY statement and hands
 * it on in two writes cut at a chosen byte (some milliseconds apart, so the client reads two socket
 * chunks), or one byte per write. Every cut position of the answer is tried: inside a message header,
 * inside a CopyData payload, between messages, inside an ErrorResponse or a NoticeResponse, and inside
 * the CommandComplete / ReadyForQuery that go back to pg's own parser.
 */
let database: string;
let admin: Client;

type Delivery = { cut: number } | 'bytewise' | 'whole';

/** The length of the first complete ReadyForQuery-terminated answer in `buf`, or -1 when not all there. */
function answerLength(buf: Buffer): number {
  let i = 0;
  while (i + 5 <= buf.length) {
    const end = i + 1 + buf.readUInt32BE(i + 1);
    if (end > buf.length) return -1;
    if (buf[i] === 0x5a) return end; // 'Z' ReadyForQuery
    i = end;
  }
  return -1;
}

/** A TCP proxy to the test server that delivers the answer to a `COPY (` statement as `delivery` says. */
async function startProxy(): Promise<{ port: number; delivery: Delivery; answers: number[]; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = {
    port: 0,
    delivery: 'whole' as Delivery,
    /** Length in bytes of each COPY answer delivered. */
    answers: [] as number[],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(pgTestPort(), '127.0.0.1');
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    let held: Buffer | undefined;
    client.on('data', (d) => {
      if (d.includes('COPY (')) held = Buffer.alloc(0);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (held === undefined) {
        client.write(d);
        return;
      }
      held = Buffer.concat([held, d]);
      const n = answerLength(held);
      if (n < 0) return;
      const answer = held.subarray(0, n);
      const rest = held.subarray(n);
      held = undefined;
      state.answers.push(answer.length);
      const delivery = state.delivery;
      const parts: Buffer[] =
        delivery === 'whole' ? [answer] : delivery === 'bytewise' ? [...answer].map((b) => Buffer.from([b])) : [answer.subarray(0, delivery.cut), answer.subarray(delivery.cut)];
      if (rest.length > 0) parts.push(rest);
      const send = (k: number) => {
        if (k >= parts.length || client.destroyed) return;
        client.write(parts[k]);
        setTimeout(() => send(k + 1), delivery === 'bytewise' ? 0 : 3);
      };
      send(0);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

let proxy: Awaited<ReturnType<typeof startProxy>>;

beforeAll(async () => {
  database = await createTestDatabase('pg_copy_framing');
  admin = new Client({ host: '127.0.0.1', port: pgTestPort(), user: 'postgres', database });
  admin.on('error', () => undefined);
  await admin.connect();
  await admin.query(`CREATE TABLE odd (id bigint PRIMARY KEY, label text, n numeric, at timestamptz)`);
  await admin.query(`INSERT INTO odd VALUES
    (1, E'tab\\there', 1.5, '2023-11-01 00:00:31+00'),
    (2, E'line\\nbreak and back\\\\slash', NULL, '2023-11-01 23:59:59+00'),
    (3, '\\N', -0.25, '2023-11-02 05:06:07+00'),
    (4, NULL, 7, '2023-10-31 12:00:00.5+00'),
    (5, 'Zürich ✓', 12345678901234567890, NULL)`);
  await admin.query(`CREATE FUNCTION noisy(i bigint) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN RAISE NOTICE 'reading row %', i; RETURN i; END $$`);
  proxy = await startProxy();
});

afterAll(async () => {
  await proxy?.close();
  await admin?.end();
  if (database) await dropTestDatabase(database);
});

async function viaProxy(): Promise<Client> {
  const client = new Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

interface Read {
  rows: { key: unknown; record: Record<string, unknown> }[];
  error?: string;
  bytes: number;
}

/** Reads `COPY (select) TO STDOUT` with CopyOutReader + CopyTextScanner (every row's key read too). */
async function readCopy(client: Client, select: string): Promise<Read> {
  await client.query("SET TimeZone = 'UTC'");
  await client.query("SET DateStyle = 'ISO, MDY'");
  const described = await client.query(`SELECT * FROM (${select}) AS q LIMIT 0`);
  const rows: Read['rows'] = [];
  const scanner = new CopyTextScanner(
    described.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    'key',
    { row: () => 'read the key', reject: (key, _reason, record) => rows.push({ key, record }) },
  );
  const reader = new CopyOutReader(`COPY (${select}) TO STDOUT`, (buf, s, e) => scanner.writeRange(buf, s, e));
  void client.query(reader);
  try {
    await reader.done;
    scanner.end();
    return { rows, bytes: reader.bytes };
  } catch (err) {
    return { rows, error: (err as Error).message, bytes: reader.bytes };
  }
}

/** The same COPY answer cut at every byte (one connection, one read per cut); each read must equal `expected`. */
async function everyCut(select: string, expected: Read): Promise<number> {
  const client = await viaProxy();
  try {
    proxy.delivery = 'whole';
    await readCopy(client, select);
    const length = proxy.answers[proxy.answers.length - 1];
    for (let cut = 1; cut < length; cut++) {
      proxy.delivery = { cut };
      const got = await readCopy(client, select);
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        throw new Error(`cut at byte ${cut} of ${length}: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`);
      }
      // the connection is in step with the server after every read
      expect((await client.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
    }
    return length;
  } finally {
    proxy.delivery = 'whole';
    await client.end();
  }
}

const ODD = 'SELECT id AS key, label, n, at FROM odd ORDER BY id';

test('escapes, NULLs and non-ASCII read the same whatever the socket chunks; every cut of the answer gives the same records', async () => {
  const whole = await readCopy(admin, ODD);
  expect(whole.error).toBeUndefined();
  expect(whole.rows.map((r) => r.key)).toEqual(['1', '2', '3', '4', '5']);
  expect(whole.rows.map((r) => r.record.label)).toEqual(['tab\there', 'line\nbreak and back\\slash', '\\N', null, 'Zürich ✓']);
  expect(whole.rows.map((r) => r.record.n)).toEqual([1.5, null, -0.25, 7, 12345678901234567000]);
  expect(whole.rows.map((r) => r.record.at)).toEqual([
    '2023-11-01T00:00:31.000Z',
    '2023-11-01T23:59:59.000Z',
    '2023-11-02T05:06:07.000Z',
    '2023-10-31T12:00:00.500Z',
    null,
  ]);
  const length = await everyCut(ODD, whole);
  expect(length).toBeGreaterThan(150);

  const client = await viaProxy();
  try {
    proxy.delivery = 'bytewise';
    expect(await readCopy(client, ODD)).toEqual(whole);
  } finally {
    proxy.delivery = 'whole';
    await client.end();
  }
});

test('an ErrorResponse mid-stream, cut anywhere, rejects with the server error after the rows before it; the connection stays usable', async () => {
  const select = 'SELECT id AS key, 10 / (3 - id) AS q FROM generate_series(1, 5) AS id';
  const expected = await readCopy(admin, select);
  expect(expected.error).toMatch(/division by zero/);
  expect(expected.rows.map((r) => r.record.q)).toEqual([5, 10]);
  await everyCut(select, expected);
});

test('NoticeResponses between the rows, cut anywhere, are stepped over', async () => {
  const select = 'SELECT noisy(id) AS key, label FROM odd ORDER BY id';
  const expected = await readCopy(admin, select);
  expect(expected.error).toBeUndefined();
  expect(expected.rows.map((r) => r.key)).toEqual(['1', '2', '3', '4', '5']);
  expect(expected.rows[1].record.label).toBe('line\nbreak and back\\slash');
  await everyCut(select, expected);
});

test('processQuery over byte-by-byte socket chunks gives the result of one whole read', async () => {
  await admin.query(`CREATE TABLE defects AS SELECT g AS id, 'seg-' || (g % 7) AS segment_id,
      (ARRAY['low','medium','high','critical'])[1 + g % 4] AS severity, 47 + g / 1000.0 AS lat, 8 + g / 1000.0 AS lon,
      timestamptz '2023-11-01 00:00:00+00' + g * interval '37 minutes' AS detected_at,
      CASE WHEN g % 3 = 0 THEN NULL ELSE g / 10.0 END AS depth_mm FROM generate_series(1, 60) AS g`);
  const query = {
    table: 'defects',
    keyColumn: 'id',
    timeColumn: 'detected_at',
    columns: { segmentId: 'segment_id', severity: 'severity', lat: 'lat', lon: 'lon', detectedAt: 'detected_at', depthMm: 'depth_mm' },
  };
  const period = { from: new Date('2023-11-01T00:00:00Z'), to: new Date('2023-11-02T12:00:00Z') };
  const whole = await processQuery('aggregate-defects', admin, query, period);
  expect(whole.records).toBe(58); // 60 rows * 37 min = 37 h; 36 h of them are in the period
  expect(Object.keys(whole.document.days as object)).toEqual(['2023-11-01', '2023-11-02']);
  const client = await viaProxy();
  try {
    proxy.delivery = 'bytewise';
    const before = proxy.answers.length;
    expect(await processQuery('aggregate-defects', client, query, period)).toEqual(whole);
    expect(proxy.answers.length).toBe(before + 1);
  } finally {
    proxy.delivery = 'whole';
    await client.end();
  }
});

test('a statement that is not a COPY TO fails clearly and leaves the connection usable', async () => {
  const reader = new CopyOutReader('SELECT 1', () => undefined);
  void admin.query(reader);
  await expect(reader.done).rejects.toThrow("COPY reader: unexpected message 'T' from the server during COPY OUT");
  expect((await admin.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
});
