import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { chromium, Browser } from 'playwright-core';
import { processStream, resolveFormat } from '../../../../containers/worker/src/engine';
import { runCli } from '../../../../lib/client/cli/program';
import { COMMANDS } from '../../../../lib/client/cli/commands';
import { motoClientConfig, motoEnv } from '../../../support/moto';

/**
 * The road-metrics dashboard rendered by `batchctl report` from daily results in S3 (moto), opened in
 * Debian's headless Chromium through playwright-core (no browser download).
 */
const ARTIFACTS = path.join(__dirname, '../../../../test-artifacts');
const DAYS = ['2023-11-01', '2023-11-02', '2023-11-03', '2023-11-04'];
const s3 = new S3Client(motoClientConfig());
const bucket = `road-report-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'road-report-'));
let browser: Browser;
let lastDoc: { result: { heatmap: { cells: Record<string, number> }; segments: Record<string, unknown> } };

function chromiumPath(): string {
  const which = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  const exe = which.stdout.trim();
  if (which.status !== 0 || !exe) throw new Error('chromium is not installed: apt-get install -y chromium (.ci/run does)');
  return exe;
}

async function dailyDoc(date: string, n: number) {
  const severities = ['low', 'medium', 'high', 'critical'];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    // Square roots skew the spread so that cells differ (a hot corner), as real defects cluster.
    const lat = 47.3 + Math.floor(Math.sqrt((i * 7919) % 121)) * 0.01 + 0.005;
    const lon = 8.5 + Math.floor(Math.sqrt((i * 104729) % 169)) * 0.01 + 0.005;
    lines.push(JSON.stringify({ segmentId: `seg-${i % 17}`, severity: severities[i % 4], lat, lon, detectedAt: `${date}T10:00:00Z`, depthMm: i % 40 }));
  }
  async function* src() {
    yield Buffer.from(lines.join('\n') + '\n');
  }
  const run = await processStream('aggregate-defects', src(), { format: resolveFormat('x.jsonl').format });
  return {
    kind: 'road-defects-daily',
    date,
    from: `${date}T00:00:00.000Z`,
    to: '',
    job: { jobId: `job-${date}`, startedAt: `${date}T02:00:00.000Z`, durationMs: 1234, records: run.records, rejected: 0, status: 'succeeded' },
    result: run.document,
  };
}

beforeAll(async () => {
  Object.assign(process.env, motoEnv());
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const [i, date] of DAYS.entries()) {
    const doc = await dailyDoc(date, 400 + i * 150);
    // A segment name that is HTML must show as text, not run as markup.
    if (i === DAYS.length - 1) (doc.result.segments as Record<string, unknown>)['<img src=x onerror=alert(1)>'] = (doc.result.segments as Record<string, unknown>)['seg-1'];
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `results/road-defects/daily/${date}.json`, Body: JSON.stringify(doc) }));
    lastDoc = doc as unknown as typeof lastDoc;
  }
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
});

afterAll(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function io() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: { ...process.env, ...motoEnv() }, isTTY: false },
    out: () => out,
    err: () => err,
  };
}

test('batchctl report renders a page that draws every cell, shows counts on hover and one trend point per day', async () => {
  const file = path.join(dir, 'report.html');
  const cli = io();
  const code = await runCli(['--output-bucket', bucket, 'report', '--date', '2023-11-04', '--out', file], cli.io, COMMANDS);
  expect(cli.err()).toBe('');
  expect(code).toBe(0);
  expect(cli.out()).toContain(`wrote ${file} (2023-11-04, 4 day(s) of history`);

  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${file}`);

  const cells = lastDoc.result.heatmap.cells;
  await expect(page.locator('#heatmap-svg rect.cell').count()).resolves.toBe(Object.keys(cells).length);
  const [name, count] = Object.entries(cells).sort((a, b) => b[1] - a[1])[0];
  const [latCell, lonCell] = name.split(':').map(Number);
  const target = page.locator(`#heatmap-svg rect.cell[data-count="${count}"]`).first();
  await target.hover();
  await expect(page.locator('#tooltip').textContent()).resolves.toContain(`: ${count} defects`);
  await expect(page.locator('#tooltip').textContent()).resolves.toMatch(new RegExp(`lat ${(latCell * 0.01).toFixed(2)}|lon ${(lonCell * 0.01).toFixed(2)}`));

  await expect(page.locator('#trend-svg circle.trend-point').count()).resolves.toBe(DAYS.length);
  await expect(page.locator('#trend-svg circle.trend-point').evaluateAll((els) => els.map((e) => e.getAttribute('data-date')))).resolves.toEqual(DAYS);
  await expect(page.locator('#jobs tbody tr').count()).resolves.toBe(DAYS.length);

  // Sorting: by defects descending, then by name ascending.
  await page.locator('#segments th[data-key="count"]').click();
  const counts = await page.locator('#segments tbody tr td:nth-child(2)').allTextContents();
  expect(counts.map(Number)).toEqual([...counts.map(Number)].sort((a, b) => b - a));
  await page.locator('#segments th[data-key="id"]').click();
  const ids = await page.locator('#segments tbody tr td:nth-child(1)').allTextContents();
  expect(ids).toEqual([...ids].sort());
  expect(ids).toContain('<img src=x onerror=alert(1)>');
  await expect(page.locator('#segments img').count()).resolves.toBe(0);

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'road-metrics-dashboard.png'), fullPage: true });
  expect(problems).toEqual([]);
  expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
  await page.close();
});

test('batchctl report names the missing day and writes nothing', async () => {
  const file = path.join(dir, 'missing.html');
  const cli = io();
  const code = await runCli(['--output-bucket', bucket, 'report', '--date', '2023-10-01', '--out', file], cli.io, COMMANDS);
  expect(code).toBe(3);
  expect(cli.err()).toContain('no daily result for 2023-10-01; run the road-metrics job for that day first');
  expect(fs.existsSync(file)).toBe(false);
  const bad = io();
  await expect(runCli(['--output-bucket', bucket, 'report', '--date', '2023-13-01', '--out', file], bad.io, COMMANDS)).resolves.toBe(2);
  expect(bad.err()).toContain('expected a calendar date YYYY-MM-DD, got "2023-13-01"');
});
