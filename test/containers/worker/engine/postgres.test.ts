import { Client } from 'pg';
import { buildQuery, clientConfig, parseDbSecret } from '../../../../containers/worker/src/engine/postgres';
import { pgTestPort } from '../../../support/postgres';

const period = { from: new Date('2023-11-01T00:00:00Z'), to: new Date('2023-11-02T00:00:00Z') };

test('a table query quotes every identifier and binds the period', () => {
  const q = buildQuery({ table: 'public.road_defects', columns: { segmentId: 'segment_id' }, keyColumn: 'id', timeColumn: 'detected_at' }, period);
  expect(q.text).toBe(
    'SELECT "id" AS __row_key, "segment_id" AS "segmentId" FROM "public"."road_defects" ' +
      'WHERE "detected_at" >= $1::timestamptz AND "detected_at" < $2::timestamptz',
  );
  expect(q.values).toEqual(['2023-11-01T00:00:00.000Z', '2023-11-02T00:00:00.000Z']);
});

test('an identifier that is not plain is refused with its name', () => {
  expect(() =>
    buildQuery({ table: 'road_defects; DROP TABLE x', columns: { a: 'a' }, keyColumn: 'id', timeColumn: 't' }, period),
  ).toThrow('table "road_defects; DROP TABLE x" is not a plain SQL identifier');
  expect(() => buildQuery({ table: 't', columns: { a: 'a"b' }, keyColumn: 'id', timeColumn: 't' }, period)).toThrow('column "a"b"');
});

test('SQL gets :from and :to as bound parameters and leaves casts alone', () => {
  const q = buildQuery({ sql: 'SELECT x::text FROM t WHERE ts >= :from AND ts < :to', keyField: 'x' }, period);
  expect(q.text).toBe('SELECT x::text FROM t WHERE ts >= $1::timestamptz AND ts < $2::timestamptz');
  expect(() => buildQuery({ sql: 'SELECT 1 WHERE ts >= :from AND ts < :until', keyField: 'x' }, period)).toThrow(
    'SQL parameter :until is unknown; allowed named parameters: :from, :to',
  );
  expect(() => buildQuery({ sql: 'SELECT 1 WHERE ts >= :from', keyField: 'x' }, period)).toThrow('SQL must use both :from and :to');
});

test('an empty period is refused', () => {
  expect(() => buildQuery({ sql: ':from :to', keyField: 'x' }, { from: period.to, to: period.from })).toThrow('is empty');
});

test('a secret that is not in the RDS format names the missing field', () => {
  expect(() => parseDbSecret('{"host":"db","username":"u"}', 'arn:secret')).toThrow(
    /database secret arn:secret: field "password" .*expected the RDS format/,
  );
  expect(() => parseDbSecret('nope', 'arn:secret')).toThrow('database secret arn:secret is not JSON');
  expect(parseDbSecret('{"host":"db","port":"6432","username":"u","password":"p","dbname":"roads"}', 's')).toEqual({
    host: 'db',
    port: 6432,
    username: 'u',
    password: 'p',
    dbname: 'roads',
  });
});

// A server without TLS is refused: test/containers/worker/engine/pg-copy-tls.test.ts (the test cluster has ssl=on).
test('TLS is required and verified by default: a certificate from a CA not given is refused', async () => {
  const secret = { host: '127.0.0.1', port: pgTestPort(), username: 'postgres', password: 'x', dbname: 'postgres' };
  expect(clientConfig(secret).ssl).toEqual({ rejectUnauthorized: true });
  const client = new Client(clientConfig(secret));
  client.on('error', () => undefined);
  await expect(client.connect()).rejects.toThrow(/unable to verify|self[- ]signed certificate|unable to get local issuer/);
  const plain = new Client(clientConfig(secret, { tls: false }));
  await plain.connect();
  const r = await plain.query('SHOW statement_timeout');
  expect(r.rows[0].statement_timeout).toBe('15min');
  await plain.end();
});
