import { Client, types } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { copyStatement, processQuery } from '../../../../containers/worker/src/engine/postgres';
import { CopyColumn, CopyTextScanner } from '../../../../containers/worker/src/engine/pg-copy';
import { createTestDatabase, dropTestDatabase, testDbClient } from '../../../support/postgres';

/**
 * The COPY text-format scanner against the real PostgreSQL of the jest run: every record it builds from
 * COPY bytes equals the record pg's own query path gives for the same row (numeric as a number, Date
 * as an ISO string, as the source has always handed records to operations), for awkward values too.
 */
let database: string;
let db: Client;
const period = { from: new Date('2023-11-01T00:00:00Z'), to: new Date('2023-11-02T00:00:00Z') };

const SELECT = `SELECT id AS key, label, note, f8, f4, num, i2, i4, i8, ok, at, at_local, d, doc, tags FROM odd
  WHERE at >= :from AND at < :to`;

beforeAll(async () => {
  database = await createTestDatabase('pg_copy');
  db = testDbClient(database);
  db.on('error', () => undefined);
  await db.connect();
  await db.query(`CREATE TABLE odd (id bigint PRIMARY KEY, label text, note varchar(40), f8 double precision, f4 real,
    num numeric, i2 smallint, i4 integer, i8 bigint, ok boolean, at timestamptz NOT NULL, at_local timestamp, d date, doc jsonb, tags text[])`);
  await db.query(`INSERT INTO odd VALUES
    (1, 'seg-1', 'plain', 47.3192, 1.5, 12.345, 1, -7, 9007199254740993, true, '2023-11-01 00:00:31+00', '2023-11-01 10:00', '2023-11-01', '{"a":1}', '{x,y}'),
    (2, E'tab\\there', E'line\\nbreak', 'NaN', '-Infinity', 'NaN', -32768, 2147483647, -1, false, '2023-11-01 23:59:59.999999+00', NULL, NULL, 'null', '{}'),
    (3, E'back\\\\slash \\\\N', 'Zürich ✓', 1e300, 3.4e38, 123456789012345678901234567890.123, 0, 0, 0, NULL, '2023-11-01 12:00:00.5+00', '2023-11-01 12:00:00.123456', '2023-11-01', '{"k":"v\\\\n"}', '{"a b","c,d"}'),
    (4, '\\N', E'cr\\rff\\fvt\\vbs\\b', -0.0, 0.1, -0.000001, 5, 5, 5, true, '2023-11-01 05:06:07+00', NULL, NULL, NULL, NULL),
    (5, '', NULL, 0.30000000000000004, 1e-7, 1e-20, NULL, NULL, NULL, true, '2023-11-01 05:06:07.001+00', NULL, NULL, '[]', NULL),
    (6, 'seg-1', 'plain', 8.5891000000001, 2, 5.000, 1, 1, 1, true, '2023-11-01 05:06:07+00', NULL, NULL, NULL, NULL),
    (7, 'outside', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-11-02 00:00:00+00', NULL, NULL, NULL, NULL)`);
});

afterAll(async () => {
  await db?.end();
  if (database) await dropTestDatabase(database);
});

/** What pg's query path gives: numeric as a number, Date as ISO (the source's record values). */
async function viaQuery(): Promise<{ key: unknown; record: Record<string, unknown> }[]> {
  const { select, settings } = copyStatement({ sql: SELECT, keyField: 'key' }, period);
  await db.query('BEGIN');
  await db.query("SET LOCAL TimeZone = 'UTC'");
  await db.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', settings.flat());
  const numeric = { getTypeParser: ((oid: number, f?: 'text') => (oid === 1700 ? Number : types.getTypeParser(oid, f ?? 'text'))) as typeof types.getTypeParser };
  const res = await db.query({ text: `${select} ORDER BY 1`, types: numeric });
  await db.query('COMMIT');
  return res.rows.map((row: Record<string, unknown>) => {
    const { key, ...rest } = row;
    return { key, record: Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])) };
  });
}

/** The COPY bytes of the same statement, and its columns. */
async function copyBytes(): Promise<{ bytes: Buffer; columns: CopyColumn[] }> {
  const copy = copyStatement({ sql: `${SELECT} ORDER BY 1`, keyField: 'key' }, period);
  await db.query('BEGIN');
  await db.query("SET LOCAL TimeZone = 'UTC'");
  await db.query("SET LOCAL DateStyle = 'ISO, MDY'");
  await db.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', copy.settings.flat());
  const described = await db.query(`SELECT * FROM (${copy.select}) AS q LIMIT 0`);
  const chunks: Buffer[] = [];
  for await (const chunk of db.query(copyTo(copy.text)) as AsyncIterable<Buffer>) chunks.push(chunk);
  await db.query('COMMIT');
  return { bytes: Buffer.concat(chunks), columns: described.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })) };
}

function scanAll(columns: CopyColumn[], pieces: Buffer[]): { key: unknown; record: Record<string, unknown> }[] {
  const out: { key: unknown; record: Record<string, unknown> }[] = [];
  // every row is rejected here, so that the key is read for each of them
  const scanner = new CopyTextScanner(columns, 'key', { row: () => 'check', reject: (key, _r, record) => out.push({ key, record }) });
  for (const p of pieces) scanner.write(p);
  scanner.end();
  return out;
}

test('records from COPY bytes equal the records of pg query results, escapes, NULLs, NaN, fractions and all', async () => {
  const expected = await viaQuery();
  const { bytes, columns } = await copyBytes();
  const got = scanAll(columns, [bytes]);
  expect(got).toHaveLength(6);
  expect(got).toEqual(expected);
  // toEqual treats -0 and 0 alike; the record must keep pg's value exactly
  for (let i = 0; i < got.length; i++) {
    for (const [k, v] of Object.entries(expected[i].record)) expect(Object.is(got[i].record[k], v) || typeof v === 'object').toBe(true);
  }
  expect(got[1].record.label).toBe('tab\there');
  expect(got[2].record.label).toBe('back\\slash \\N');
  expect(got[3].record.label).toBe('\\N');
  expect(got[4].record.note).toBeNull();
  expect(got[0].key).toBe('1');
  expect(got[0].record.at).toBe('2023-11-01T00:00:31.000Z');
});

test('rows split anywhere across chunks give the same records', async () => {
  const { bytes, columns } = await copyBytes();
  const whole = scanAll(columns, [bytes]);
  expect(scanAll(columns, [...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
  for (const cut of [1, 7, 50, bytes.length - 1]) {
    expect(scanAll(columns, [bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(whole);
  }
});

test('a stream cut inside a row, a row with the wrong number of fields and a missing key column are errors', () => {
  const columns = [
    { name: 'key', dataTypeID: 20 },
    { name: 'a', dataTypeID: 25 },
  ];
  const sink = { row: () => undefined, reject: () => undefined };
  const cut = new CopyTextScanner(columns, 'key', sink);
  cut.write(Buffer.from('1\tx\n2\ty'));
  expect(() => cut.end()).toThrow('the COPY stream ended inside a row (3 bytes without a newline)');
  expect(() => new CopyTextScanner(columns, 'key', sink).write(Buffer.from('1\n'))).toThrow('COPY row 1 has 1 fields; expected 2');
  expect(() => new CopyTextScanner(columns, 'key', sink).write(Buffer.from('1\tx\ty\n'))).toThrow('COPY row 1 has more than 2 fields; expected 2');
  expect(() => new CopyTextScanner(columns, 'id', sink)).toThrow('key field "id" is not a column of the query; its columns: key, a');
  expect(() => new CopyTextScanner([...columns, { name: '__proto__', dataTypeID: 25 }], 'key', sink)).toThrow('__proto__');
});

test('the source reads in a read-only transaction: SQL that writes fails clearly', async () => {
  await db.query('CREATE SEQUENCE IF NOT EXISTS odd_seq');
  const sql = `SELECT id, label AS "segmentId" FROM odd WHERE at >= :from AND at < :to AND nextval('odd_seq') > 0`;
  await expect(processQuery('aggregate-defects', db, { sql, keyField: 'id' }, period)).rejects.toThrow(
    /PostgreSQL failed after 0 rows .*read-only transaction/,
  );
  expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
});

test('the statement timeout stops a slow COPY with a clear error and the connection stays usable', async () => {
  await db.query('SET statement_timeout = 300');
  try {
    const sql = `SELECT id, label AS "segmentId" FROM odd WHERE at >= :from AND at < :to UNION ALL SELECT NULL, NULL FROM pg_sleep(5)`;
    await expect(processQuery('aggregate-defects', db, { sql, keyField: 'id' }, period)).rejects.toThrow(
      /PostgreSQL failed after \d+ rows .*statement timeout/,
    );
  } finally {
    await db.query('SET statement_timeout = 0');
  }
  expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
});

test('a reject writer that fails mid-stream fails the run after the COPY is drained; the connection stays usable', async () => {
  const sql = `SELECT id, label AS "segmentId", 'nope' AS severity FROM odd WHERE at >= :from AND at < :to`;
  let calls = 0;
  await expect(
    processQuery('aggregate-defects', db, { sql, keyField: 'id' }, period, {
      onReject: () => {
        calls++;
        throw new Error('rejects bucket unavailable');
      },
    }),
  ).rejects.toThrow(/failed after \d+ rows .*rejects bucket unavailable/);
  expect(calls).toBe(1);
  const tx = await db.query('SELECT now() = statement_timestamp() AS outside');
  expect(tx.rows[0].outside).toBe(true); // no transaction left open
});
