/**
 * One chunk on several cores: the job's byte range [from, end) is cut into N sub-ranges, one worker
 * thread each. The chunk rule (a record belongs to the range that holds its first byte) makes the cut
 * exact wherever it falls, so the threads' partial states merged with the operation's `merge` equal a
 * one-thread run, bit for bit (merges are exact by contract).
 *
 * This thread does the I/O: one open-ended ranged GET per sub-range through the chunk's own S3 client
 * (so any endpoint and credentials work), its bytes copied into a ring of RING_SLOTS 1 MiB slots shared
 * with the sub-range's thread (no allocation, nothing for either heap to collect), at most a ring ahead. Threads send their
 * rejects back with each batch's acknowledgement; they are written in sub-range order, so the rejects
 * file is the one-thread file: the first unfinished sub-range writes through, later ones wait in memory
 * (a sub-range whose waiting rejects pass REJECT_BUFFER_BYTES is not fed until it is the first).
 *
 * Interruption: a shared flag stops every thread at its next record boundary. The checkpoint keeps the
 * longest finished prefix: the sub-ranges finished before the first stopped one, plus that one up to
 * where it stopped. Work of later sub-ranges is dropped (read again by the next attempt), so the
 * checkpoint stays one offset and the rejects written stay in order.
 */
import { existsSync } from 'fs';
import { availableParallelism } from 'os';
import * as path from 'path';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';
import { getOperation } from '../operations/registry';
import type { AnyRecordOperation, RecordCounts } from '../operations/types';
import { bindScanStep, scanRecords } from './scan';
import { SCAN_THREAD_MARK } from './thread-mark';

/** How processChunk may use threads (the worker entrypoint sets it; the chunk Lambda does not). */
export interface ThreadOptions {
  /** Threads for one chunk; 1 (or less) processes in the calling thread. */
  count: number;
  /** A sub-range gets at least this many bytes; smaller chunks use fewer threads. Default 8 MiB. */
  minBytesPerThread?: number;
  /** Bytes per batch posted to a thread. Default 1 MiB. */
  batchBytes?: number;
}

export const DEFAULT_MIN_BYTES_PER_THREAD = 8 * 1024 * 1024;
const DEFAULT_BATCH_BYTES = 1024 * 1024;
const RING_SLOTS = 4;
const REJECT_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * CPUs this process may use: the cgroup's CPU quota (a Batch/ECS job's vCPUs, Fargate's task size)
 * when there is one, else os.availableParallelism().
 */
export function cpuLimit(readFile: (p: string) => string = (p) => require('fs').readFileSync(p, 'utf8')): number {
  let cpus = availableParallelism();
  const quota = (q: number, period: number) => {
    if (q > 0 && period > 0) cpus = Math.min(cpus, Math.max(1, Math.floor(q / period)));
  };
  try {
    const [q, period] = readFile('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (q !== 'max') quota(Number(q), Number(period));
  } catch {
    try {
      quota(Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim()), Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim()));
    } catch {
      // no cgroup limits visible: the machine's CPUs
    }
  }
  return cpus;
}

/**
 * WORKER_THREADS: a positive integer, or unset for the CPUs the job may use (cpuLimit). Values above
 * the CPU limit are capped to it: more threads than cores only add switching.
 */
export function threadCountFromEnv(value: string | undefined, limit = cpuLimit()): number {
  if (value === undefined || value.trim() === '') return limit;
  if (!/^[1-9]\d*$/.test(value.trim())) {
    throw new Error(`WORKER_THREADS (${value}) must be a positive integer (threads per chunk; unset for one per available CPU)`);
  }
  return Math.min(Number(value), limit);
}

/** Sub-ranges [a_i, a_{i+1}) of [from, end), at most `count`, each at least `minBytes` long (but one at least). */
export function subRanges(from: number, end: number, count: number, minBytes: number): number[] {
  const len = end - from;
  const n = Math.max(1, Math.min(Math.floor(count), Math.floor(len / Math.max(1, minBytes))));
  const cuts: number[] = [];
  for (let i = 0; i <= n; i++) cuts.push(from + Math.floor((len * i) / n));
  return cuts;
}

export interface ThreadedScanInput {
  op: AnyRecordOperation;
  /** OPERATION_CONFIG as given (each thread parses it again). */
  rawConfig: unknown;
  fieldScanner: boolean;
  maxRecordBytes: number;
  /** The first record offset of this attempt and whether it is known to start a record. */
  from: number;
  fromIsRecordStart: boolean;
  end: number;
  open: (readFrom: number) => Promise<AsyncIterable<Buffer>>;
  writeReject: (line: string) => void;
  /** Backpressure of the rejects writer. */
  drainRejects: () => Promise<void> | undefined;
  signal?: AbortSignal;
}

export interface ThreadedScanResult<S extends RecordCounts> {
  /** Partial states of the finished prefix, in order (merge them into the attempt's state). */
  states: S[];
  stoppedAt?: number;
  bytesRead: number;
  threads: number;
}

interface DoneMessage {
  t: 'done';
  state: Record<string, unknown>;
  stoppedAt?: number;
  bytesRead: number;
  rejects: string[];
}
type FromThread = { t: 'ack'; rejects: string[] } | DoneMessage | { t: 'error'; message: string; stack?: string };

interface ThreadData {
  mark: typeof SCAN_THREAD_MARK;
  operation: string;
  config: unknown;
  fieldScanner: boolean;
  maxRecordBytes: number;
  sourceOffset: number;
  skipPartialFirst: boolean;
  end: number;
  stop: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  batchBytes: number;
}

/**
 * How to start a scan thread: this module's sibling thread-main (.js after tsc; .ts through tsx's
 * require hook in a checkout), else the running bundle itself (the container's worker.js: its entry,
 * main.ts, runs thread-main when started as a scan thread).
 */
function threadScript(): { file: string; eval: boolean } {
  const js = path.join(__dirname, 'thread-main.js');
  if (existsSync(js)) return { file: js, eval: false };
  const ts = path.join(__dirname, 'thread-main.ts');
  if (__filename.endsWith('.ts') && existsSync(ts)) {
    return { file: `require('tsx/cjs'); require(${JSON.stringify(ts)});`, eval: true };
  }
  return { file: __filename, eval: false };
}

export async function scanThreaded<S extends RecordCounts>(input: ThreadedScanInput, options: ThreadOptions): Promise<ThreadedScanResult<S>> {
  const cuts = subRanges(input.from, input.end, options.count, options.minBytesPerThread ?? DEFAULT_MIN_BYTES_PER_THREAD);
  const n = cuts.length - 1;
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  const stop = new SharedArrayBuffer(4);
  const stopFlag = new Int32Array(stop);
  const onAbort = () => Atomics.store(stopFlag, 0, 1);
  if (input.signal?.aborted) onAbort();
  input.signal?.addEventListener('abort', onAbort);
  const script = threadScript();

  const done: (DoneMessage | undefined)[] = new Array(n).fill(undefined);
  const inFlight = new Array<number>(n).fill(0);
  const waiting: string[][] = Array.from({ length: n }, () => []);
  const waitingBytes = new Array<number>(n).fill(0);
  const wakers: (() => void)[][] = Array.from({ length: n }, () => []);
  let head = 0;
  let failure: Error | undefined;
  let writes: Promise<void> = Promise.resolve();

  const wake = (i: number) => {
    for (const w of wakers[i].splice(0)) w();
  };
  const wakeAll = () => {
    for (let i = 0; i < n; i++) wake(i);
  };
  const until = (i: number) => new Promise<void>((resolve) => wakers[i].push(resolve));
  const write = (lines: string[]) => {
    for (const l of lines) input.writeReject(l);
    const p = input.drainRejects();
    if (p) writes = writes.then(() => p);
  };
  const take = (i: number, lines: string[]) => {
    if (lines.length === 0) return;
    if (i === head) write(lines);
    else {
      for (const l of lines) {
        waiting[i].push(l);
        waitingBytes[i] += l.length;
      }
    }
  };
  const advanceHead = () => {
    // A sub-range that stopped early ends the prefix: nothing after it is written.
    while (head < n && done[head] && done[head]!.stoppedAt === undefined) {
      head++;
      if (head < n) {
        write(waiting[head]);
        waiting[head] = [];
        waitingBytes[head] = 0;
      }
      wakeAll();
    }
  };

  const workers: Worker[] = [];
  const finished: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const first = i === 0;
    const readFrom = first ? (input.fromIsRecordStart ? input.from : input.from - 1) : cuts[i] - 1;
    const data: ThreadData = {
      mark: SCAN_THREAD_MARK,
      operation: input.op.name,
      config: input.rawConfig,
      fieldScanner: input.fieldScanner,
      maxRecordBytes: input.maxRecordBytes,
      sourceOffset: readFrom,
      skipPartialFirst: !(first && input.fromIsRecordStart),
      end: cuts[i + 1],
      stop,
      ring: undefined as unknown as SharedArrayBuffer,
      batchBytes,
    };
    // The batches travel through a ring of RING_SLOTS shared slots per thread: no allocation, no copy
    // into the thread, no garbage for either heap to collect.
    const ring = new SharedArrayBuffer(RING_SLOTS * batchBytes);
    data.ring = ring;
    const worker = new Worker(script.file, { eval: script.eval, workerData: data, stdout: false, stderr: false });
    workers.push(worker);
    finished.push(
      new Promise<void>((resolve) => {
        worker.on('message', (m: FromThread) => {
          if (m.t === 'ack') {
            inFlight[i]--;
            take(i, m.rejects);
            wake(i);
          } else if (m.t === 'done') {
            take(i, m.rejects);
            done[i] = m;
            advanceHead();
            wake(i);
            resolve();
          } else {
            failure ??= Object.assign(new Error(m.message), { stack: m.stack });
            onAbort();
            wakeAll();
            resolve();
          }
        });
        worker.on('error', (err) => {
          failure ??= err;
          onAbort();
          wakeAll();
          resolve();
        });
        worker.on('exit', (code) => {
          if (!done[i]) {
            failure ??= new Error(`scan thread ${i} exited (code ${code}) before finishing its sub-range`);
            onAbort();
            wakeAll();
          }
          resolve();
        });
      }),
    );
    finished.push(feed(i, readFrom, worker, Buffer.from(ring)));
  }

  async function feed(i: number, readFrom: number, worker: Worker, ring: Buffer): Promise<void> {
    const stopped = () => done[i] !== undefined || failure !== undefined;
    let source: AsyncIterable<Buffer>;
    try {
      source = await input.open(readFrom);
    } catch (err) {
      failure ??= err as Error;
      onAbort();
      wakeAll();
      return;
    }
    let slot = 0;
    let fill = 0;
    const post = () => {
      inFlight[i]++;
      worker.postMessage({ t: 'data', slot, len: fill });
      slot = (slot + 1) % RING_SLOTS;
      fill = 0;
    };
    /** Waits until the next slot is free (the thread asked for the batch after the one it held). */
    const slotFree = async (): Promise<boolean> => {
      while (!stopped() && (inFlight[i] >= RING_SLOTS || (i !== head && waitingBytes[i] > REJECT_BUFFER_BYTES))) await until(i);
      await writes;
      return !stopped();
    };
    try {
      outer: for await (const chunk of source) {
        let off = 0;
        while (off < chunk.length) {
          if (fill === 0 && !(await slotFree())) break outer;
          const n = Math.min(batchBytes - fill, chunk.length - off);
          chunk.copy(ring, slot * batchBytes + fill, off, off + n);
          fill += n;
          off += n;
          if (fill === batchBytes) post();
        }
      }
      if (!stopped()) {
        if (fill > 0) post();
        worker.postMessage({ t: 'end' });
      }
    } catch (err) {
      failure ??= err as Error;
      onAbort();
      wakeAll();
    }
  }

  try {
    await Promise.all(finished);
    await writes;
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (failure) throw failure;

  const states: S[] = [];
  let bytesRead = 0;
  let stoppedAt: number | undefined;
  for (let i = 0; i < n; i++) {
    const d = done[i]!;
    states.push(input.op.deserialize(d.state) as S);
    bytesRead += d.bytesRead;
    if (d.stoppedAt !== undefined) {
      stoppedAt = d.stoppedAt;
      break;
    }
  }
  return { states, stoppedAt, bytesRead, threads: n };
}

/** The loop a scan thread runs: the batches it is sent, scanned with the operation's step. */
export async function runScanThread(): Promise<void> {
  if (isMainThread || !parentPort) throw new Error('runScanThread runs in a worker thread started by scanThreaded');
  const port = parentPort;
  const d = workerData as ThreadData;
  try {
    const op = getOperation(d.operation);
    if (op.kind !== 'records') throw new Error(`operation ${d.operation} does not process records`);
    const state = op.init(op.parseConfig(d.config)) as RecordCounts;
    let rejects: string[] = [];
    const sink = {
      record(record: Record<string, unknown>) {
        const reason = op.step(state, record, { emit: () => undefined });
        if (reason === undefined) state.records++;
        return reason;
      },
      reject(offset: number, reason: string, raw: Buffer) {
        state.rejected++;
        rejects.push(JSON.stringify({ offset, reason, raw: raw.toString('utf8') }) + '\n');
      },
    };
    const stop = new Int32Array(d.stop);
    const queue: (Buffer | null)[] = [];
    let wakeUp: (() => void) | undefined;
    const ring = d.ring;
    port.on('message', (m: { t: 'data'; slot: number; len: number } | { t: 'end' }) => {
      queue.push(m.t === 'data' ? Buffer.from(ring, m.slot * d.batchBytes, m.len) : null);
      wakeUp?.();
    });
    // A batch is acknowledged (with the rejects found so far) when the scan asks for the next one: only
    // then is it fully consumed, whether or not it held a record boundary.
    let pulled = false;
    const source: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (pulled) {
            port.postMessage({ t: 'ack', rejects });
            rejects = [];
          }
          pulled = true;
          while (queue.length === 0) await new Promise<void>((r) => (wakeUp = r));
          const b = queue.shift()!;
          if (b === null) return;
          yield b;
        }
      },
    };
    const scan = await scanRecords(
      source,
      {
        format: 'jsonl',
        sourceOffset: d.sourceOffset,
        skipPartialFirst: d.skipPartialFirst,
        end: d.end,
        maxRecordBytes: d.maxRecordBytes,
        values: 'native',
        fastStep: d.fieldScanner ? bindScanStep(op, state) : undefined,
        shouldStop: () => Atomics.load(stop, 0) === 1,
      },
      sink,
    );
    port.postMessage({ t: 'done', state: op.serialize(state), stoppedAt: scan.stoppedAt, bytesRead: scan.bytesRead, rejects });
  } catch (err) {
    port.postMessage({ t: 'error', message: (err as Error).message, stack: (err as Error).stack });
  }
}

/** True in a thread started by scanThreaded (an entrypoint then calls runScanThread instead of its main). */
export function isScanThread(): boolean {
  return !isMainThread && (workerData as { mark?: unknown } | null)?.mark === SCAN_THREAD_MARK;
}
