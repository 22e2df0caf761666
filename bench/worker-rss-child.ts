/**
 * One measured run in a fresh process, so peak RSS belongs to that run alone:
 *   tsx bench/worker-rss-child.ts <file.jsonl> engine|baseline
 * Prints one JSON line: records, ms, maxRssMb.
 */
import { createReadStream } from 'fs';
import { processStream } from '../containers/worker/src/engine';
import { baselineAggregate } from './baseline';

async function main(): Promise<void> {
  const [file, mode] = process.argv.slice(2);
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const t0 = process.hrtime.bigint();
  let records: number;
  if (mode === 'baseline') {
    records = (await baselineAggregate(source)).records as number;
  } else {
    records = (await processStream('aggregate-defects', source, { format: 'jsonl' })).records;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // resourceUsage().maxRSS is in KiB
  process.stdout.write(JSON.stringify({ records, ms, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err as Error).stack) + '\n');
  process.exit(1);
});
