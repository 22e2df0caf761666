import * as http from 'http';
import { Client } from 'pg';
import { runCli } from '../../../../lib/client/cli/program';
import { COMMANDS } from '../../../../lib/client/cli/commands';
import { resultKeys, runDays } from '../../../../containers/worker/src/road-metrics/job';
import { resolveDays } from '../../../../containers/worker/src/road-metrics/period';
import { motoEnv } from '../../../support/moto';
import { createTestDatabase, dropTestDatabase, testDbClient } from '../../../support/postgres';
import { createBucket, exists, getBuffer, motoS3, uniqueBucket } from '../support/s3';

/**
 * The nightly job publishes the dashboard next to its results (real PostgreSQL, moto S3), and
 * `batchctl report --url` hands out a presigned link that serves exactly that page.
 */
const s3 = motoS3();
const bucket = uniqueBucket('road-dash');
const PREFIX = 'results/road-defects';
let database: string;
let db: Client;

function reportData(html: string): { date: string; history: { date: string; records: number }[]; day: { result: { records: number } } } {
  const m = /<script id="report-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no report data in the page');
  return JSON.parse(m[1]);
}

function httpGet(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

function cli() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: { ...process.env, ...motoEnv() }, isTTY: false },
    out: () => out,
    err: () => err,
  };
}

beforeAll(async () => {
  Object.assign(process.env, motoEnv());
  await createBucket(s3, bucket);
  database = await createTestDatabase('road_dash');
  db = testDbClient(database);
  await db.connect();
  await db.query(`CREATE TABLE road_defects (
    id bigint PRIMARY KEY, segment_id text, severity text, lat double precision, lon double precision,
    detected_at timestamptz NOT NULL, depth_mm numeric(8,3))`);
  // Day d of November 2023 has 1000 + 100 d rows, so every day's page is told apart by its counts.
  await db.query(
    `INSERT INTO road_defects
     SELECT row_number() OVER (), 'seg-' || (g % 13), (ARRAY['low','medium','high','critical'])[1 + g % 4],
            47.30 + (g % 17) * 0.01, 8.50 + (g % 11) * 0.01,
            timestamptz '2023-11-01 00:00:00+00' + (d - 1) * interval '1 day' + (g % 86400) * interval '1 second', (g % 300) / 10.0
     FROM generate_series(1, 4) d, LATERAL generate_series(1, 1000 + 100 * d) g`,
  );
});

afterAll(async () => {
  await db?.end();
  if (database) await dropTestDatabase(database);
});

test('each day run publishes its page and moves latest.html; a backfill of an older day does not move it', async () => {
  const outcomes = await runDays(resolveDays({ from: '2023-11-02', to: '2023-11-04' }), { db, s3, bucket, jobId: 'job-dash', writeBack: false });
  expect(outcomes.map((o) => [o.status, o.dashboardKey])).toEqual([
    ['succeeded', `${PREFIX}/dashboard/2023-11-02.html`],
    ['succeeded', `${PREFIX}/dashboard/2023-11-03.html`],
  ]);
  const latest = (await getBuffer(s3, bucket, resultKeys(PREFIX, '2023-11-03').latestDashboard)).toString('utf8');
  expect(latest).toBe((await getBuffer(s3, bucket, `${PREFIX}/dashboard/2023-11-03.html`)).toString('utf8'));
  const data = reportData(latest);
  expect(data.date).toBe('2023-11-03');
  expect(data.day.result.records).toBe(1300);
  expect(data.history.map((h) => [h.date, h.records])).toEqual([['2023-11-02', 1200], ['2023-11-03', 1300]]);

  // Backfill 2023-11-01: its own page has only itself in the history, and latest.html still shows 2023-11-03.
  await runDays(resolveDays({ date: '2023-11-01' }), { db, s3, bucket, jobId: 'job-backfill', writeBack: false });
  expect(reportData((await getBuffer(s3, bucket, `${PREFIX}/dashboard/2023-11-01.html`)).toString('utf8')).history.map((h) => h.date)).toEqual(['2023-11-01']);
  expect(reportData((await getBuffer(s3, bucket, `${PREFIX}/dashboard/latest.html`)).toString('utf8')).date).toBe('2023-11-03');
});

test('batchctl report --url prints a presigned link that serves the published page as HTML', async () => {
  const c = cli();
  await expect(runCli(['--output-bucket', bucket, 'report', '--url', '--date', '2023-11-02', '--expires', '600'], c.io, COMMANDS)).resolves.toBe(0);
  expect(c.err()).toBe('');
  const url = c.out().trim();
  expect(url).toMatch(/X-Amz-Expires=600/);
  const res = await httpGet(url);
  expect(res.status).toBe(200);
  expect(res.type).toContain('text/html');
  expect(res.body).toBe((await getBuffer(s3, bucket, `${PREFIX}/dashboard/2023-11-02.html`)).toString('utf8'));

  const latest = cli();
  await expect(runCli(['--output-bucket', bucket, 'report', '--url'], latest.io, COMMANDS)).resolves.toBe(0);
  expect(reportData((await httpGet(latest.out().trim())).body).date).toBe('2023-11-03');
});

test('batchctl report --url names a day without a page, and bad arguments name the field', async () => {
  const missing = cli();
  await expect(runCli(['--output-bucket', bucket, 'report', '--url', '--date', '2023-10-01'], missing.io, COMMANDS)).resolves.toBe(3);
  expect(missing.err()).toContain(`no published dashboard at s3://${bucket}/${PREFIX}/dashboard/2023-10-01.html`);
  const long = cli();
  await expect(runCli(['--output-bucket', bucket, 'report', '--url', '--expires', '999999'], long.io, COMMANDS)).resolves.toBe(2);
  expect(long.err()).toContain('--expires: 999999 seconds is too long; allowed: 1 to 604800');
  const noOut = cli();
  await expect(runCli(['--output-bucket', bucket, 'report', '--date', '2023-11-02'], noOut.io, COMMANDS)).resolves.toBe(2);
  expect(noOut.err()).toContain('--out: required to render a page');
  expect(await exists(s3, bucket, `${PREFIX}/dashboard/2023-10-01.html`)).toBe(false);
});
