/**
 * Benchmark of the local chunked pipeline (`npm run bench:pipeline`, also in `npm run bench`): 2M
 * generated road-defect records, `run-local` with 2 workers, against ONE whole-object worker process
 * (src/main.ts bundled with the Dockerfile's flags, WORKER_THREADS=1, start-up included; the pool's
 * serve-mode workers scan with 1 thread too) reading the same file twice over: from the same embedded S3
 * server, and in place (WORKER_LOCAL_INPUT_ROOT, as the pool's workers read it). All in one run, alternating:
 *   whole (S3), whole (local file), cold pipeline (empty cache: synthesis, bundles, code caches), warm pipeline,
 *   then twice: whole (S3), whole (local file), warm pipeline. Ratios are of medians (3 runs each).
 * Prints one line per goal figure (`<name>: <value> (goal ...)`) and a table with the load average at
 * each measurement and the CPU time of every process involved (from /proc: the machine is shared, CPU
 * time is steadier than wall time); checks that every pipeline result equals the whole-object result
 * document (exact aggregates). Timings are reported, never asserted.
 * `--write-notes FILE` also writes the table as Markdown.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { writeSampleFile } from '../containers/worker/src/sample-data';
import { linkObject, startEmbeddedS3 } from '../lib/local/embedded-s3';
import { LocalRunResult, runLocal } from '../lib/local/run-local';
import { spawnSync } from 'child_process';
import { bundleWorker } from './worker-process';

const RECORDS = Number(process.env.PIPELINE_BENCH_RECORDS ?? 2_000_000);
/** Unset: the runner's default chunking (one chunk per worker here); set: that many records per chunk. */
const CHUNK_RECORDS = process.env.PIPELINE_BENCH_CHUNK_RECORDS ? Number(process.env.PIPELINE_BENCH_CHUNK_RECORDS) : undefined;
const WORKERS = 2;
const BUCKET = 'bench';

const load = (): string => os.loadavg()[0].toFixed(1);
const TICK_MS = 1000 / 100;
/** CPU ms of a process from /proc/<pid>/stat: its own user + system, plus (withChildren) that of its waited-for children. */
function procCpuMs(pid: number | 'self', withChildren: boolean): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // fields 14-17 of proc(5): utime, stime, cutime, cstime (f[0] is field 3)
    return (f[11] + f[12] + (withChildren ? f[13] + f[14] : 0)) * TICK_MS;
  } catch {
    return NaN;
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sec = (ms: number): string => (ms / 1000).toFixed(1);

/** One bundled worker process over the whole object, the environment contract as a Batch job gets it. */
function wholeObjectProcess(bundle: string, endpoint: string, outKey: string, localInputRoot?: string): { ms: number; records: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bundle], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: {
      PATH: process.env.PATH,
      NODE_NO_WARNINGS: '1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      JOB_ID: 'bench-whole',
      OPERATION: 'aggregate-defects',
      INPUT_S3_BUCKET: BUCKET,
      INPUT_S3_KEY: 'in/defects.jsonl',
      OUTPUT_S3_BUCKET: BUCKET,
      OUTPUT_S3_KEY: outKey,
      WORKER_THREADS: '1',
      ...(localInputRoot ? { WORKER_LOCAL_INPUT_ROOT: localInputRoot } : {}),
    },
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`worker process exited ${r.status}: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.includes('"message":"summary"'));
  if (!line) throw new Error(`no summary from the worker process: ${r.stderr}`);
  return { ms, records: (JSON.parse(line) as { records: number }).records };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-bench-'));
  const server = await startEmbeddedS3(path.join(dir, 'baseline-s3'), BUCKET);
  const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  try {
    const input = path.join(dir, 'defects.jsonl');
    const bytes = await writeSampleFile(input, { count: RECORDS, seed: 42 });
    const bundle = bundleWorker(path.join(dir, 'bundle'));
    // A worker without the local-file input would ignore the variable and read from S3: then the bench
    // says so instead of printing an S3 figure under the local-file name.
    const localInput = fs.readFileSync(bundle, 'utf8').includes('WORKER_LOCAL_INPUT_ROOT');
    linkObject(path.join(dir, 'baseline-s3'), BUCKET, 'in/defects.jsonl', input);

    // The same file for the baseline reading in place: <root>/<bucket>/<key> (WORKER_LOCAL_INPUT_ROOT).
    const localRoot = path.join(dir, 'baseline-local');
    fs.mkdirSync(path.join(localRoot, BUCKET, 'in'), { recursive: true });
    fs.linkSync(input, path.join(localRoot, BUCKET, 'in/defects.jsonl'));

    const fmtPhases = (r: LocalRunResult): string =>
      `${sec(r.phases.synthMs)} / ${sec(r.phases.uploadMs)} / ${sec(r.phases.executionMs)} s`;
    type Whole = { ms: number; cpuMs: number; load: string };
    const wholeRuns: Record<'s3' | 'local', Whole[]> = { s3: [], local: [] };
    let wholeDoc: string | undefined;
    const whole = async (i: number, from: 's3' | 'local'): Promise<void> => {
      // CPU: the process (a waited-for child) plus the baseline's S3 server meanwhile.
      const cpu0 = procCpuMs('self', true) - procCpuMs('self', false) + procCpuMs(server.process.pid!, false);
      const run = wholeObjectProcess(bundle, server.endpoint, `out/whole-${from}-${i}.json`, from === 'local' ? localRoot : undefined);
      const cpuMs = procCpuMs('self', true) - procCpuMs('self', false) + procCpuMs(server.process.pid!, false) - cpu0;
      if (run.records !== RECORDS) throw new Error(`whole-object process counted ${run.records} records`);
      wholeRuns[from].push({ ms: run.ms, cpuMs, load: load() });
      process.stderr.write(`whole-object process (${from}) ${i}: ${sec(run.ms)} s, CPU ${sec(cpuMs)} s, load ${load()}\n`);
      const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `out/whole-${from}-${i}.json` }));
      const doc = JSON.stringify(sortKeys(JSON.parse(await res.Body!.transformToString())));
      if (wholeDoc !== undefined && doc !== wholeDoc) throw new Error(`whole-object process (${from}) gave another result document`);
      wholeDoc = doc;
    };

    const runs: { kind: 'cold' | 'warm'; result: LocalRunResult; cpuMs: number; load: string; same: boolean }[] = [];
    const cacheDirectory = path.join(dir, 'cache');
    const pipeline = async (kind: 'cold' | 'warm'): Promise<void> => {
      if (kind === 'cold') fs.rmSync(cacheDirectory, { recursive: true, force: true });
      const output = path.join(dir, `result-${runs.length}.json`);
      // CPU of this process and of every process it started and waited for (S3 server, synthesis, workers).
      const cpu0 = procCpuMs('self', true);
      const result = await runLocal({
        input,
        operation: 'aggregate-defects',
        output,
        ...(CHUNK_RECORDS !== undefined ? { chunkRecords: CHUNK_RECORDS } : {}),
        workers: WORKERS,
        // Every chunk on the worker pool (the Batch route), none in-process.
        lambdaMaxRecords: 0,
        stateDir: path.join(dir, 'state'),
        cacheDirectory,
      });
      const cpuMs = procCpuMs('self', true) - cpu0;
      if (result.status !== 'SUCCEEDED') throw new Error(`pipeline run ended ${result.status}`);
      if (result.cache.definition !== (kind === 'warm') || result.cache.workerBundle !== (kind === 'warm')) {
        throw new Error(`${kind} pipeline run found the cache ${JSON.stringify(result.cache)}`);
      }
      const doc = JSON.stringify(sortKeys(JSON.parse(fs.readFileSync(output, 'utf8'))));
      runs.push({ kind, result, cpuMs, load: load(), same: doc === wholeDoc });
      process.stderr.write(`${kind} pipeline: ${sec(result.durationMs)} s (${fmtPhases(result)}), CPU ${sec(cpuMs)} s, same result: ${doc === wholeDoc}, load ${load()}\n`);
    };

    await whole(0, 's3');
    if (localInput) await whole(0, 'local');
    await pipeline('cold');
    await pipeline('warm');
    for (let i = 1; i <= 2; i++) {
      await whole(i, 's3');
      if (localInput) await whole(i, 'local');
      await pipeline('warm');
    }

    const wholeMedian = median(wholeRuns.s3.map((r) => r.ms));
    const wholeLocalMedian = localInput ? median(wholeRuns.local.map((r) => r.ms)) : NaN;
    const notSupported = 'n/a (this worker has no WORKER_LOCAL_INPUT_ROOT: the pool reads from the embedded S3 too)';
    const cold = runs.find((r) => r.kind === 'cold')!;
    const warms = runs.filter((r) => r.kind === 'warm');
    const warmMedian = median(warms.map((r) => r.result.durationMs));
    const rate = (ms: number): string => `${Math.round((RECORDS * 1000) / ms).toLocaleString('en-US')} records/s`;
    const wholeRow = (rs: Whole[]): string => `${rs.map((r) => sec(r.ms)).join(', ')} s (${rate(median(rs.map((r) => r.ms)))}); CPU ${rs.map((r) => sec(r.cpuMs)).join(', ')} s | ${rs.map((r) => r.load).join(', ')}`;
    const goals = [
      `pipeline (2 workers, warm) / one whole-object worker process from the embedded S3: ${(wholeMedian / warmMedian).toFixed(2)} (goal >= 1.3)`,
      `pipeline (2 workers, warm) / one whole-object worker process reading the local file: ${localInput ? (wholeLocalMedian / warmMedian).toFixed(2) : notSupported} (goal >= 1.3)`,
      `cold - warm pipeline: ${sec(cold.result.durationMs - warmMedian)} s (goal <= 5 s)`,
      `load average (1 min) during the runs: ${[...wholeRuns.s3, ...wholeRuns.local, ...runs].map((r) => r.load).join(', ')}`,
    ];
    const lines = [
      `| figure | value | load average (1 min) |`,
      `| --- | --- | --- |`,
      `| input | ${RECORDS.toLocaleString('en-US')} JSON-lines records, ${(bytes / 1e6).toFixed(0)} MB; pipeline: ${WORKERS} workers, ${cold.result.chunkCount} chunks (${CHUNK_RECORDS !== undefined ? `of ${CHUNK_RECORDS.toLocaleString('en-US')} records` : "the runner's default: one per worker"}) | |`,
      `| one whole-object worker process (bundled, 1 thread, from the embedded S3) | ${wholeRow(wholeRuns.s3)} |`,
      `| one whole-object worker process (bundled, 1 thread, reading the local file: WORKER_LOCAL_INPUT_ROOT) | ${localInput ? wholeRow(wholeRuns.local) : `${notSupported} |`} |`,
      `| pipeline, cold (empty cache), end to end | ${sec(cold.result.durationMs)} s (${rate(cold.result.durationMs)}); CPU ${sec(cold.cpuMs)} s | ${cold.load} |`,
      `| pipeline, warm, end to end | ${warms.map((r) => sec(r.result.durationMs)).join(', ')} s (${rate(warmMedian)}); CPU ${warms.map((r) => sec(r.cpuMs)).join(', ')} s | ${warms.map((r) => r.load).join(', ')} |`,
      `| **pipeline (2 workers, warm) / one whole-object worker process from the embedded S3** (time, medians; goal >= 1.3) | **${(wholeMedian / warmMedian).toFixed(2)}** | |`,
      `| **pipeline (2 workers, warm) / one whole-object worker process reading the local file** (time, medians; goal >= 1.3) | **${localInput ? (wholeLocalMedian / warmMedian).toFixed(2) : notSupported}** | |`,
      `| **cold - warm pipeline** (goal <= 5 s) | **${sec(cold.result.durationMs - warmMedian)} s** (cold / warm time ${(cold.result.durationMs / warmMedian).toFixed(2)}) | |`,
      `| phases cold (each from the start; they overlap): definition ready / S3 server + link + bundle + pool started / workflow | ${fmtPhases(cold.result)} | |`,
      `| phases warm: definition ready / S3 server + link + bundle + pool started / workflow | ${warms.map((r) => fmtPhases(r.result)).join('; ')} | |`,
      `| workflow alone (warm) / whole-object process from the embedded S3 | ${(wholeMedian / median(warms.map((r) => r.result.phases.executionMs))).toFixed(2)} | |`,
      `| warm: chunk time per worker (sum of chunk wall times / ${WORKERS}) / workflow time | ${warms.map((r) => `${sec(r.result.chunkTimings.reduce((t, c) => t + c.durationMs, 0) / WORKERS)} / ${sec(r.result.phases.executionMs)} s`).join('; ')} | |`,
      `| worker processes started per run (chunks on the pool) | ${runs.map((r) => `${r.result.workerProcesses} (${r.result.invocations.batch})`).join(', ')} | |`,
      `| every pipeline result equals the whole-object result document | ${runs.every((r) => r.same) ? 'yes' : 'NO'} | |`,
      `| machine | ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}) | ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end |`,
    ];
    process.stdout.write(`\n${goals.join('\n')}\n`);
    const report = lines.join('\n');
    process.stdout.write(`\n## pipeline (bench/pipeline-bench.ts)\n${report}\n`);
    const i = process.argv.indexOf('--write-notes');
    if (i > 0 && process.argv[i + 1]) fs.writeFileSync(process.argv[i + 1], `${report}\n`);
    if (!runs.every((r) => r.same)) process.exitCode = 1;
  } finally {
    s3.destroy();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`pipeline-bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
