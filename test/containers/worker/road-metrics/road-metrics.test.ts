import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { spawnSync } from 'child_process';
import { Client } from 'pg';
import { clientConfig, loadDbSecret } from '../../../../containers/worker/src/engine/postgres';
import { processStream, resolveFormat } from '../../../../containers/worker/src/engine';
import { DailyDocument, resultKeys, runDay, runDays, writeTrend } from '../../../../containers/worker/src/road-metrics/job';
import { dayPeriod, parseDay, resolveDays } from '../../../../containers/worker/src/road-metrics/period';
import { migrate } from '../../../../containers/worker/src/road-metrics/writeback';
import { motoClientConfig, motoEnv } from '../../../support/moto';
import { createTestDatabase, dropTestDatabase, pgTestPort, testDbClient } from '../../../support/postgres';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, uniqueBucket } from '../support/s3';
import { REPO_ROOT } from '../support/worker-process';

/**
 * The road-metrics job against the real PostgreSQL cluster of the jest run and moto (S3, Secrets
 * Manager): 1M generated defects over 30 days of November 2023.
 */
const ROWS = 1_000_000;
const s3 = motoS3();
const sm = new SecretsManagerClient(motoClientConfig());
const bucket = uniqueBucket('road-metrics');
let database: string;
let db: Client;

async function secretFor(name: string, applicationDb: string): Promise<string> {
  const res = await sm.send(
    new CreateSecretCommand({
      Name: `${name}-${process.pid}-${Math.floor(Math.random() * 1e6)}`,
      SecretString: JSON.stringify({ engine: 'postgres', host: '127.0.0.1', port: pgTestPort(), username: 'postgres', password: 'unused', dbname: applicationDb }),
    }),
  );
  return res.ARN!;
}

async function connect(applicationName: string): Promise<Client> {
  const secret = await loadDbSecret(sm, await secretFor('road-db', database));
  const client = new Client(clientConfig(secret, { tls: false, applicationName }));
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function tableRows(client: Client, date?: string): Promise<unknown[]> {
  const where = date ? `WHERE day = '${date}'` : '';
  const segs = await client.query(`SELECT * FROM road_metrics.daily_segment_defects ${where} ORDER BY day, segment_id`);
  const runs = await client.query(`SELECT day, records, rejected, segments FROM road_metrics.daily_runs ${where} ORDER BY day`);
  return [segs.rows, runs.rows];
}

beforeAll(async () => {
  await createBucket(s3, bucket);
  database = await createTestDatabase('road_metrics');
  const admin = testDbClient(database);
  await admin.connect();
  await admin.query(`CREATE TABLE road_defects (
    id bigint PRIMARY KEY, segment_id text, severity text, lat double precision, lon double precision,
    detected_at timestamptz NOT NULL, depth_mm numeric(8,3))`);
  // Server-side generation: 1M rows spread over 2023-11-01 .. 2023-11-30, 250 segments, some without depth.
  await admin.query(
    `INSERT INTO road_defects
     SELECT g, 'seg-' || lpad(((g / 30) % 250)::text, 3, '0'),
            (ARRAY['low','medium','high','critical'])[1 + (g / 7) % 4],
            47.30 + ((g * 7919) % 1000) / 1000.0 * 0.2,
            8.50 + ((g * 104729) % 1000) / 1000.0 * 0.3,
            timestamptz '2023-11-01 00:00:00+00' + (g % 30) * interval '1 day' + ((g * 31) % 86400) * interval '1 second',
            CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 500) / 10.0 END
     FROM generate_series(1::bigint, $1::bigint) g`,
    [ROWS],
  );
  await admin.query('CREATE INDEX ON road_defects (detected_at)');
  await admin.query('ANALYZE road_defects');
  await admin.end();
  db = await connect('road-metrics-test');
  await migrate(db);
});

afterAll(async () => {
  await db?.end();
  if (database) await dropTestDatabase(database);
});

test('a day read from PostgreSQL gives the same aggregate as the same rows run through the file path', async () => {
  const day = dayPeriod(parseDay('2023-11-07', '--date'));
  const outcome = await runDay(day, { db, s3, bucket, jobId: 'job-eq' });
  expect(outcome).toMatchObject({ status: 'succeeded', rejected: 0 });

  // The same rows as a JSON-lines file, serialized by PostgreSQL itself, through the S3/file scan path.
  const lines = await db.query(
    `SELECT json_build_object('segmentId', segment_id, 'severity', severity, 'lat', lat, 'lon', lon,
       'detectedAt', to_char(detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'depthMm', depth_mm)::text AS line
     FROM road_defects WHERE detected_at >= $1 AND detected_at < $2`,
    [day.from, day.to],
  );
  const file = Buffer.from(lines.rows.map((r: { line: string }) => r.line).join('\n') + '\n');
  async function* chunks() {
    yield file;
  }
  const viaFile = await processStream('aggregate-defects', chunks(), { format: resolveFormat('x.jsonl').format });
  const doc = await getJsonObject<DailyDocument>(s3, bucket, resultKeys('results/road-defects', '2023-11-07').daily);
  expect(doc.result).toEqual(viaFile.document);
  const count = await db.query(`SELECT count(*)::int AS n FROM road_defects WHERE detected_at >= $1 AND detected_at < $2`, [day.from, day.to]);
  expect(doc.result.records).toBe(count.rows[0].n);
  expect(doc.result.records).toBeGreaterThan(30_000);
  expect(Object.keys(doc.result.days)).toEqual(['2023-11-07']);
});

test('rerunning a day replaces it in the tables and never duplicates it', async () => {
  const [day] = resolveDays({ date: '2023-11-08' });
  await runDay(day, { db, s3, bucket, jobId: 'job-1' });
  const first = await tableRows(db, '2023-11-08');
  await runDay(day, { db, s3, bucket, jobId: 'job-2' });
  const second = await tableRows(db, '2023-11-08');
  expect(second).toEqual(first);
  const [segments, runs] = first as [unknown[], unknown[]];
  expect(segments).toHaveLength(250);
  expect(runs).toEqual([{ day: expect.any(Date), records: expect.any(String), rejected: '0', segments: 250 }]);
  const total = await db.query(`SELECT sum(defects)::int AS n FROM road_metrics.daily_segment_defects WHERE day = '2023-11-08'`);
  const raw = await db.query(`SELECT count(*)::int AS n FROM road_defects WHERE detected_at >= '2023-11-08' AND detected_at < '2023-11-09'`);
  expect(total.rows[0].n).toBe(raw.rows[0].n);
});

test('bad rows land in the rejects object with their keys, and the good rows are counted', async () => {
  const admin = testDbClient(database);
  await admin.connect();
  await admin.query(`INSERT INTO road_defects
    SELECT 2000000 + g, 'seg-x', 'low', 47.4, 8.6, timestamptz '2023-12-05 10:00:00+00', 1.5 FROM generate_series(1, 500) g`);
  await admin.query(`INSERT INTO road_defects VALUES
    (3000001, 'seg-x', 'huge', 47.4, 8.6, '2023-12-05 11:00:00+00', 1),
    (3000002, 'seg-x', 'low', 200, 8.6, '2023-12-05 11:00:00+00', 1),
    (3000003, NULL, 'low', 47.4, 8.6, '2023-12-05 11:00:00+00', 1)`);
  await admin.end();
  const [day] = resolveDays({ date: '2023-12-05' });
  const outcome = await runDay(day, { db, s3, bucket, jobId: 'job-bad' });
  expect(outcome).toMatchObject({ status: 'succeeded', records: 500, rejected: 3 });
  const rejects = (await getBuffer(s3, bucket, outcome.rejectsKey)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(rejects.map((r) => [r.key, r.reason]).sort()).toEqual([
    ['3000001', 'severity must be one of low, medium, high, critical'],
    ['3000002', 'lat must be a number in [-90, 90]'],
    ['3000003', 'segmentId must be a non-empty string'],
  ]);
});

test('a connection dropped mid-stream fails clearly and writes nothing for that day', async () => {
  const date = '2023-11-20';
  const keys = resultKeys('results/road-defects', date);
  const victim = await connect('road-metrics-victim');
  await migrate(victim);
  const latestBefore = (await getBuffer(s3, bucket, keys.latest)).toString('utf8');
  // The period's rows, then a server-side sleep: the first FETCHes succeed, a later one blocks until killed.
  const sql = `SELECT id, segment_id AS "segmentId", severity, lat, lon, detected_at AS "detectedAt", depth_mm AS "depthMm"
     FROM road_defects WHERE detected_at >= :from AND detected_at < :to
     UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM pg_sleep(120)`;
  const running = runDay(dayPeriod(parseDay(date, '--date')), {
    db: victim,
    s3,
    bucket,
    jobId: 'job-killed',
    query: { sql, keyField: 'id' },
  });
  const failed = expect(running).rejects.toThrow(/PostgreSQL failed after [1-9]\d* rows .*terminat/);
  for (let i = 0; ; i++) {
    const r = await db.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'road-metrics-victim' AND wait_event = 'PgSleep'`);
    if (r.rows.length > 0) {
      await db.query('SELECT pg_terminate_backend($1)', [r.rows[0].pid]);
      break;
    }
    if (i > 600) throw new Error('the victim query never reached pg_sleep');
    await new Promise((res) => setTimeout(res, 100));
  }
  await failed;
  expect(await exists(s3, bucket, keys.daily)).toBe(false);
  expect(await exists(s3, bucket, keys.rejects)).toBe(false);
  expect((await getBuffer(s3, bucket, keys.latest)).toString('utf8')).toBe(latestBefore);
  expect(await tableRows(db, date)).toEqual([[], []]);
});

test('the trend merges daily results into per-segment series, one point per day, without raw data', async () => {
  const trendBucket = uniqueBucket('road-trend');
  await createBucket(s3, trendBucket);
  const outcomes = await runDays(resolveDays({ from: '2023-11-01', to: '2023-11-04' }), { db, s3, bucket: trendBucket, jobId: 'job-t', writeBack: false });
  expect(outcomes.map((o) => o.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  // writeTrend gets no database: the series come from the three daily result objects alone.
  const { key, trend } = await writeTrend(s3, trendBucket, { days: 30 });
  expect(key).toBe('results/road-defects/trend/2023-11-03.json');
  expect(trend.days).toEqual(['2023-11-01', '2023-11-02', '2023-11-03']);
  expect(trend.totals.defects).toEqual(outcomes.map((o) => o.records));
  const perDay = await db.query(
    `SELECT (detected_at AT TIME ZONE 'UTC')::date::text AS day, count(*)::int AS n FROM road_defects
     WHERE segment_id = 'seg-007' AND detected_at >= '2023-11-01' AND detected_at < '2023-11-04' GROUP BY 1 ORDER BY 1`,
  );
  expect(trend.segments['seg-007'].defects).toEqual(perDay.rows.map((r: { n: number }) => r.n));
  const latest = await getJsonObject<{ date: string }>(s3, trendBucket, 'results/road-defects/latest.json');
  expect(latest.date).toBe('2023-11-03');
});

test('the job entry point runs yesterday (relative to the schedule time) end to end with the secret from Secrets Manager', async () => {
  const runBucket = uniqueBucket('road-main');
  await createBucket(s3, runBucket);
  const secretId = await secretFor('road-main', database);
  const res = spawnSync('npx', ['tsx', 'containers/worker/src/road-metrics/main.ts', 'run'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...motoEnv(), OUTPUT_S3_BUCKET: runBucket, DB_CREDENTIALS_ARN: secretId, RUN_AS_OF: '2023-11-10T01:00:00Z', DB_TLS: 'false', JOB_ID: 'job-main' },
  });
  expect(res.stderr).not.toMatch(/road-metrics:/);
  expect(res.status).toBe(0);
  const doc = await getJsonObject<DailyDocument>(s3, runBucket, 'results/road-defects/daily/2023-11-09.json');
  expect(doc.job).toMatchObject({ jobId: 'job-main', status: 'succeeded', rejected: 0 });
  const runs = await db.query(`SELECT job_id FROM road_metrics.daily_runs WHERE day = '2023-11-09'`);
  expect(runs.rows).toEqual([{ job_id: 'job-main' }]);
});
