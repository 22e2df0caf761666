import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { chromium, Browser } from 'playwright-core';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { writeRunDashboard } from '../../../lib/local/dashboard';
import { runLocal, LocalRunResult } from '../../../lib/local/run-local';

/**
 * The dashboard `npm start` writes for its run: a real run-local over a generated sample, rendered by
 * the `batchctl report` renderer and opened in Debian's headless Chromium (playwright-core).
 */
const ARTIFACTS = path.join(__dirname, '../../../test-artifacts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'local-dashboard-'));
let browser: Browser;
let run: LocalRunResult;
let result: { records: number; rejected: number; days: Record<string, number>; heatmap: { cells: Record<string, number> } };

function chromiumPath(): string {
  const which = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  const exe = which.stdout.trim();
  if (which.status !== 0 || !exe) throw new Error('chromium is not installed: apt-get install -y chromium (.ci/run does)');
  return exe;
}

beforeAll(async () => {
  const input = path.join(tmp, 'defects.jsonl');
  await writeSampleFile(input, { count: 20_000, seed: 7, format: 'jsonl' });
  run = await runLocal({
    input,
    operation: 'aggregate-defects',
    output: path.join(tmp, 'result.json'),
    chunkRecords: 10_000,
    workers: 1,
    stateDir: path.join(tmp, 'state'),
  });
  result = JSON.parse(fs.readFileSync(run.outputPath!, 'utf8'));
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the run's dashboard draws every heatmap cell of its result and one trend point per day it covers", async () => {
  expect(run.status).toBe('SUCCEEDED');
  const file = writeRunDashboard(run, path.join(tmp, 'dashboard.html'));
  expect(file).toBe(path.join(tmp, 'dashboard.html'));
  expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);

  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`file://${file}`);

  const days = Object.keys(result.days).sort();
  expect(days.length).toBeGreaterThan(1);
  await expect(page.locator('#report-date').textContent()).resolves.toBe(`run ${run.runId}, ${days[0]} to ${days[days.length - 1]}`);
  await expect(page.locator('#summary').textContent()).resolves.toContain(`${result.records} defects, ${result.rejected} rejected rows`);
  await expect(page.locator('#heatmap-svg rect.cell').count()).resolves.toBe(Object.keys(result.heatmap.cells).length);
  await expect(page.locator('#trend-svg circle.trend-point').evaluateAll((els) => els.map((e) => e.getAttribute('data-date')))).resolves.toEqual(days);
  const [top] = Object.entries(result.heatmap.cells).sort((a, b) => b[1] - a[1]);
  // The sample spans hundreds of kilometres, so cells are under a pixel wide and overlap: the event goes
  // to the cell itself rather than to whatever is under the mouse at its centre.
  await page.locator(`#heatmap-svg rect.cell[data-count="${top[1]}"]`).first().dispatchEvent('mouseenter');
  const box = await page.locator('#heatmap-svg').boundingBox();
  expect(box!.width).toBeLessThanOrEqual(521);
  expect(box!.height).toBeLessThanOrEqual(361);
  await expect(page.locator('#tooltip').textContent()).resolves.toContain(`: ${top[1]} defects`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'local-run-dashboard.png'), timeout: 120_000 });
  expect(problems).toEqual([]);
  await page.close();
}, 300_000);

test('a run that did not succeed, or a result of another operation, gets no dashboard and nothing is written', () => {
  const file = path.join(tmp, 'none.html');
  expect(() => writeRunDashboard({ ...run, status: 'FAILED' }, file)).toThrow(`run ${run.runId} ended FAILED; no dashboard to render`);
  const other = path.join(tmp, 'other.json');
  fs.writeFileSync(other, JSON.stringify({ operation: 'count-lines', lines: 3 }));
  expect(() => writeRunDashboard({ ...run, outputPath: other }, file)).toThrow(`${other}: operation "count-lines" has no dashboard; only aggregate-defects does`);
  expect(fs.existsSync(file)).toBe(false);
});
