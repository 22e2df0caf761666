/**
 * One measured run in a fresh process, so its peak RSS and time belong to it alone (bench/photos-bench.ts):
 *   bundle <in endpoint> <input key> <out endpoint> <output key>
 *                                                    bundle-photos, input and output in the bucket `bench`
 *   plain <list file> <connections>                  the baseline: GET every URL of the list with that many
 *                                                    connections at a time, bodies written to /dev/null
 *   idle                                             loads the bundle's modules and does nothing (the floor)
 * Prints one JSON line: status, records, bytes, ms, maxRssMb.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createWriteStream, readFileSync } from 'fs';
import * as http from 'http';
import { pipeline } from 'stream/promises';
import { processChunk } from '../containers/worker/src/engine';

async function plain(listFile: string, connections: number): Promise<{ status: string; records: number; bytes: number }> {
  const urls = (JSON.parse(readFileSync(listFile, 'utf8')) as { files: { url: string }[] }).files.map((f) => f.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let next = 0;
  let bytes = 0;
  const one = (url: string) =>
    new Promise<void>((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
          res.on('data', (c: Buffer) => (bytes += c.length));
          pipeline(res, createWriteStream('/dev/null')).then(resolve, reject);
        })
        .on('error', reject);
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < urls.length) await one(urls[next++]);
    }),
  );
  agent.destroy();
  return { status: 'succeeded', records: urls.length, bytes };
}

async function main(): Promise<void> {
  const [mode, a, b, c, d] = process.argv.slice(2);
  const t0 = process.hrtime.bigint();
  let out = { status: 'idle', records: 0, bytes: 0 };
  if (mode === 'plain') out = await plain(a, Number(b));
  else if (mode === 'bundle') {
    const client = (endpoint: string) =>
      new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
    const s3In = client(a);
    const s3Out = client(c);
    const r = await processChunk(
      { jobId: 'bench', operation: 'bundle-photos', input: { bucket: 'bench', key: b }, output: { bucket: 'bench', key: d } },
      { s3In, s3Out },
    );
    out = { status: r.status, records: r.records, bytes: (r.document as { bytes: number }).bytes };
    s3In.destroy();
    s3Out.destroy();
  } else if (mode !== 'idle') throw new Error(`unknown mode ${mode}: bundle, plain or idle`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // resourceUsage().maxRSS is in KiB.
  process.stdout.write(JSON.stringify({ ...out, ms, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err as Error).stack) + '\n');
  process.exit(1);
});
