import * as fs from 'fs';
import * as net from 'net';
import * as tls from 'tls';
import { Client } from 'pg';
import { CopyOutReader } from '../../../../containers/worker/src/engine/pg-copy';
import { clientConfig, processQuery } from '../../../../containers/worker/src/engine/postgres';
import { DEFAULT_DEFECTS_QUERY } from '../../../../containers/worker/src/road-metrics/job';
import { createTestDatabase, dropTestDatabase, pgTestPort, testDbClient } from '../../../support/postgres';

/**
 * The PostgreSQL source over TLS, as it connects in production (clientConfig: TLS required, the
 * certificate verified against the given CA), against the jest run's real cluster, which globalSetup
 * starts with ssl=on and a server certificate signed by a throwaway CA (PG_TEST_TLS_CA). CopyOutReader
 * takes its bytes from the connection's stream, which for TLS is the TLSSocket (decrypted), not the TCP
 * socket under it: the aggregate and every COPY byte must equal those of a plain connection, also when
 * one CopyData message spans several TLS records (rows wider than a record's 16 KB).
 */
const ROWS = 20_000;
const WIDE_ROWS = 12;
const period = { from: new Date('2023-11-01T00:00:00Z'), to: new Date('2023-11-02T00:00:00Z') };
let database: string;

function caPem(): string {
  const file = process.env.PG_TEST_TLS_CA;
  if (!file) throw new Error('PG_TEST_TLS_CA is not set: the jest globalSetup did not start PostgreSQL with TLS');
  return fs.readFileSync(file, 'utf8');
}

/** A client configured the way the road-metrics job configures its own (TLS by default). */
function tlsClient(options: { caPem?: string; port?: number } = {}): Client {
  const client = new Client(
    clientConfig(
      { host: '127.0.0.1', port: options.port ?? pgTestPort(), username: 'postgres', password: '', dbname: database },
      { caPem: 'caPem' in options ? options.caPem : caPem() },
    ),
  );
  client.on('error', () => undefined);
  return client;
}

async function usingClient<T>(client: Client, use: (c: Client) => Promise<T>): Promise<T> {
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  database = await createTestDatabase('pg_tls');
  await usingClient(testDbClient(database), async (db) => {
    await db.query(`CREATE TABLE road_defects (id bigint PRIMARY KEY, segment_id text, severity text, lat double precision,
      lon double precision, detected_at timestamptz NOT NULL, depth_mm numeric(8,3))`);
    await db.query(
      `INSERT INTO road_defects SELECT g, 'seg-' || lpad((g % 250)::text, 4, '0'), (ARRAY['low','medium','high','critical'])[1 + (g / 7) % 4],
         47.30 + ((g * 7919) % 1000) / 1000.0 * 0.2, 8.50 + ((g * 104729) % 1000) / 1000.0 * 0.3,
         timestamptz '2023-11-01T00:00:00Z' + ((g * 31) % 90000) * interval '1 second', CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 500) / 10.0 END
       FROM generate_series(1::bigint, $1::bigint) g`,
      [ROWS],
    );
    // rows of 30-60 KB: each CopyData message spans several TLS records (at most 16 KB of plaintext each)
    await db.query(`CREATE TABLE wide (id int PRIMARY KEY, body text)`);
    await db.query(`INSERT INTO wide SELECT g, repeat(md5(g::text), 900 + g * 90) FROM generate_series(1, $1) g`, [WIDE_ROWS]);
  });
}, 60_000);

afterAll(async () => {
  await dropTestDatabase(database);
});

test('the source connects with TLS verified against the CA (the server sees an SSL connection)', async () => {
  const viaTls = await usingClient(tlsClient(), async (c) => {
    const stream = (c as unknown as { connection: { stream: unknown } }).connection.stream;
    expect(stream).toBeInstanceOf(tls.TLSSocket);
    expect((stream as tls.TLSSocket).authorized).toBe(true);
    return (await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl;
  });
  expect(viaTls).toBe(true);
  const plain = await usingClient(testDbClient(database), async (c) => (await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl);
  expect(plain).toBe(false);
});

test('aggregate-defects over TLS equals the same period over a plain connection', async () => {
  const overTls = await usingClient(tlsClient(), (c) => processQuery('aggregate-defects', c, DEFAULT_DEFECTS_QUERY, period));
  const plain = await usingClient(testDbClient(database), (c) => processQuery('aggregate-defects', c, DEFAULT_DEFECTS_QUERY, period));
  // 90,000 s of spread: rows after the end of the day fall outside the period
  const inPeriod = Array.from({ length: ROWS }, (_, k) => ((k + 1) * 31) % 90000).filter((s) => s < 86400).length;
  expect(plain.records).toBe(inPeriod);
  expect(overTls.records).toBe(plain.records);
  expect(overTls.rejected).toBe(0);
  expect(overTls.document).toEqual(plain.document);
});

/** Every CopyData payload of `text` on `client`, and how many byte ranges the reader handed on. */
async function copyOut(client: Client, text: string): Promise<{ payload: Buffer; ranges: number }> {
  const parts: Buffer[] = [];
  let ranges = 0;
  const reader = new CopyOutReader(text, (buf, s, e) => {
    ranges++;
    parts.push(Buffer.from(buf.subarray(s, e)));
  });
  void client.query(reader);
  await reader.done;
  return { payload: Buffer.concat(parts), ranges };
}

test('a CopyData message spanning several TLS records is read whole from the decrypted stream', async () => {
  const text = 'COPY (SELECT id, body FROM wide ORDER BY id) TO STDOUT';
  const overTls = await usingClient(tlsClient(), (c) => copyOut(c, text));
  const plain = await usingClient(testDbClient(database), (c) => copyOut(c, text));
  expect(plain.payload.toString('latin1').split('\n').length - 1).toBe(WIDE_ROWS);
  expect(overTls.payload.equals(plain.payload)).toBe(true);
  // more ranges than rows: the messages did arrive cut across TLS records, and were joined right
  expect(overTls.ranges).toBeGreaterThan(WIDE_ROWS);
  // the connection is usable after the COPY (pg's parser got the rest of the stream back)
  expect(
    await usingClient(tlsClient(), async (c) => {
      await copyOut(c, text);
      return (await c.query('SELECT count(*)::int AS n FROM wide')).rows[0].n;
    }),
  ).toBe(WIDE_ROWS);
});

test('a server certificate not signed by the given CA is refused', async () => {
  // no CA given: Node's default roots, which do not hold the throwaway CA
  await expect(tlsClient({ caPem: undefined }).connect()).rejects.toThrow(/self[- ]signed certificate|unable to verify|unable to get local issuer/);
});

test('a server without TLS is refused when TLS is required (the default)', async () => {
  // answers the SSLRequest with 'N', as PostgreSQL with ssl=off does, and records what it is sent after
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.once('data', (d) => {
      received.push(d);
      socket.write('N');
      socket.on('data', (more) => received.push(more));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    await expect(tlsClient({ port }).connect()).rejects.toThrow('The server does not support SSL connections');
    // the SSLRequest (length 8, code 80877103) and nothing else: no startup message, no password in clear
    expect(Buffer.concat(received).equals(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]))).toBe(true);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
