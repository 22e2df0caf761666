/**
 * One chunk on several cores: the job's byte range [from, end) is cut into N sub-ranges, one worker
 * thread each. The chunk rule (a record belongs to the range that holds its first byte) makes the cut
 * exact wherever it falls, so the threads' partial states merged with the operation's `merge` equal a
 * one-thread run, bit for bit (merges are exact by contract).
 *
 * Input: when the object is a local file (WORKER_LOCAL_INPUT_ROOT), each thread reads its own sub-range
 * from it into a buffer of its own, and this thread only starts, merges and writes. From S3 this thread
 * does the I/O: one open-ended ranged GET per sub-range through the chunk's own S3 client (so any
 * endpoint and credentials work), its bytes copied into a ring of RING_SLOTS 1 MiB slots shared with the
 * sub-range's thread (no allocation, nothing for either heap to collect), at most a ring ahead.
 *
 * Rejects: threads send them back (with each ring batch's acknowledgement, or after each buffer they
 * read themselves), and they are written in sub-range order, so the rejects file is the one-thread file:
 * the first unfinished sub-range writes through, later ones wait in memory (a sub-range whose waiting
 * rejects pass REJECT_BUFFER_BYTES is held until it is the first: not fed, or told to pause).
 *
 * Interruption: a shared flag stops every thread at its next record boundary. The checkpoint keeps the
 * longest finished prefix: the sub-ranges finished before the first stopped one, plus that one up to
 * where it stopped. Work of later sub-ranges is dropped (read again by the next attempt), so the
 * checkpoint stays one offset and the rejects written stay in order.
 */
import { closeSync, existsSync, openSync, readSync } from 'fs';
import { availableParallelism } from 'os';
import * as path from 'path';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';
import type { AnyRecordOperation, RecordCounts } from '../operations/types';
import { bindScanLines, scanRecords } from './scan';
import { SCAN_THREAD_MARK } from './thread-mark';
import { LIGHT_THREAD_OPERATIONS, ThreadOperation } from './thread-operations';

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
  /** The input's local file (WORKER_LOCAL_INPUT_ROOT): each thread then reads its own sub-range from it. */
  localFile?: string;
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
  /**
   * The partial state as the JSON text of its result document (serialize, the operation's storage
   * form): one flat string to copy between the threads instead of a structured clone of a large object
   * graph, which costs the receiving thread several times more (a 0.9 MB document: ~0.15 s vs ~0.02 s).
   */
  state: string;
  stoppedAt?: number;
  bytesRead: number;
  rejects: string[];
}
/** 'ack': a ring batch is consumed; 'rejects': rejects of a buffer a file-reading thread read itself. */
type FromThread = { t: 'ack'; rejects: string[] } | { t: 'rejects'; rejects: string[] } | DoneMessage | { t: 'error'; message: string; stack?: string };

/** What a scan thread is started with: enough to load its operation and make its state. */
interface ThreadData {
  mark: typeof SCAN_THREAD_MARK;
  operation: string;
  /** OPERATION_CONFIG as given, and parsed by the operation when it is a light one (LIGHT_THREAD_OPERATIONS). */
  config: unknown;
  parsedConfig?: unknown;
  fieldScanner: boolean;
}

/** The first message a scan thread gets: its sub-range and where its bytes come from. */
interface ThreadStart {
  t: 'start';
  maxRecordBytes: number;
  sourceOffset: number;
  skipPartialFirst: boolean;
  end: number;
  /** Int32 flags: [0] stop (all threads), [1 + index] this thread must pause (its waiting rejects are too many). */
  flags: SharedArrayBuffer;
  index: number;
  /** Where the bytes come from: the thread reads this file itself, or the starting thread feeds this ring. */
  file?: string;
  ring?: SharedArrayBuffer;
  batchBytes: number;
}

type ThreadEvent = { kind: 'message'; message: FromThread } | { kind: 'error'; error: Error } | { kind: 'exit'; code: number };

/**
 * A scan thread, possibly started before its chunk is known (prestartScanThreads): its events are kept
 * until the chunk's scan listens, so nothing it says early (a failed start) is lost.
 */
class ScanThread {
  readonly worker: Worker;
  readonly key: string;
  private early: ThreadEvent[] = [];
  private listener?: (event: ThreadEvent) => void;

  constructor(operation: string, rawConfig: unknown, parsedConfig: unknown, fieldScanner: boolean) {
    const script = threadScript(operation);
    const data: ThreadData = { mark: SCAN_THREAD_MARK, operation, config: rawConfig, parsedConfig, fieldScanner };
    this.key = threadKey(operation, rawConfig, fieldScanner);
    this.worker = new Worker(script.file, { eval: script.eval, workerData: data, stdout: false, stderr: false });
    this.worker.on('message', (message: FromThread) => this.emit({ kind: 'message', message }));
    this.worker.on('error', (error) => this.emit({ kind: 'error', error }));
    this.worker.on('exit', (code) => this.emit({ kind: 'exit', code }));
  }

  listen(listener: (event: ThreadEvent) => void): void {
    this.listener = listener;
    for (const event of this.early.splice(0)) listener(event);
  }

  private emit(event: ThreadEvent): void {
    if (this.listener) this.listener(event);
    else this.early.push(event);
  }

  stop(): void {
    this.worker.unref();
    this.worker.terminate().catch(() => undefined);
  }
}

const threadKey = (operation: string, rawConfig: unknown, fieldScanner: boolean) => JSON.stringify([operation, rawConfig ?? null, fieldScanner]);

/** Threads started ahead of their chunk, not yet taken. */
let prestarted: ScanThread[] = [];

/**
 * Starts `count` scan threads for `operation` before the chunk is known, so that they load and make
 * their state while the calling thread is still starting (the worker process does this first thing in
 * batch mode: engine/prestart.ts). `parsedConfig`: the operation's parseConfig of rawConfig. The chunk's scan takes them when its operation, config and field-scanner
 * setting are the same, and starts others otherwise. Only for LIGHT_THREAD_OPERATIONS; idle threads never
 * hold the process open, and releasePrestartedThreads ends the ones not taken.
 */
export function prestartScanThreads(
  operation: string,
  rawConfig: unknown,
  parsedConfig: unknown,
  count: number,
  fieldScanner = process.env.FIELD_SCANNER !== 'off',
): number {
  if (count < 2 || !LIGHT_THREAD_OPERATIONS.has(operation)) return 0;
  for (let i = 0; i < count; i++) {
    const thread = new ScanThread(operation, rawConfig, parsedConfig, fieldScanner);
    thread.worker.unref();
    prestarted.push(thread);
  }
  return count;
}

/** Ends the prestarted threads no chunk took (a chunk too small for threads, another format, a failure). */
export function releasePrestartedThreads(): void {
  for (const t of prestarted.splice(0)) t.stop();
}

/** Threads prestarted and not taken yet (for tests). */
export function prestartedThreadCount(): number {
  return prestarted.length;
}

/**
 * How to start a scan thread. For an operation of LIGHT_THREAD_OPERATIONS: engine/scan-thread, which
 * loads that operation only (a sibling .js after tsc, or the image's own small bundle of it next to
 * worker.js; .ts through tsx's require hook in a checkout). Otherwise, or when there is no such file:
 * engine/thread-main, which has the registry (sibling .js or .ts alike), else the running bundle itself
 * (a worker.js bundled alone: its entry, main.ts, runs thread-main when started as a scan thread).
 */
function threadScript(operation: string): { file: string; eval: boolean } {
  const entries = LIGHT_THREAD_OPERATIONS.has(operation) ? ['scan-thread', 'thread-main'] : ['thread-main'];
  for (const entry of entries) {
    const js = path.join(__dirname, `${entry}.js`);
    if (existsSync(js)) return { file: js, eval: false };
    const ts = path.join(__dirname, `${entry}.ts`);
    if (__filename.endsWith('.ts') && existsSync(ts)) {
      return { file: `require('tsx/cjs'); require(${JSON.stringify(ts)});`, eval: true };
    }
  }
  return { file: __filename, eval: false };
}

export async function scanThreaded<S extends RecordCounts>(input: ThreadedScanInput, options: ThreadOptions): Promise<ThreadedScanResult<S>> {
  const cuts = subRanges(input.from, input.end, options.count, options.minBytesPerThread ?? DEFAULT_MIN_BYTES_PER_THREAD);
  const n = cuts.length - 1;
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  const flagsBuffer = new SharedArrayBuffer(4 * (n + 1));
  const flags = new Int32Array(flagsBuffer);
  const setPause = (i: number, on: boolean) => {
    Atomics.store(flags, 1 + i, on ? 1 : 0);
    if (!on) Atomics.notify(flags, 1 + i);
  };
  const onAbort = () => {
    Atomics.store(flags, 0, 1);
    for (let i = 0; i < n; i++) setPause(i, false);
  };
  if (input.signal?.aborted) onAbort();
  input.signal?.addEventListener('abort', onAbort);
  const key = threadKey(input.op.name, input.rawConfig, input.fieldScanner);
  // a light thread (LIGHT_THREAD_OPERATIONS) loads no zod: its config is parsed here
  const parsedConfig = LIGHT_THREAD_OPERATIONS.has(input.op.name) ? input.op.parseConfig(input.rawConfig) : undefined;
  // prestarted threads for this very operation and config are taken; any others are of no use now
  const ready = prestarted.filter((t) => t.key === key).slice(0, n);
  prestarted = prestarted.filter((t) => !ready.includes(t));
  releasePrestartedThreads();

  const done: (DoneMessage | undefined)[] = new Array(n).fill(undefined);
  const restored: S[] = [];
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
  const fail = (err: Error) => {
    failure ??= err;
    onAbort();
    wakeAll();
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
      // a thread reading its own file is told to wait; a ring-fed one is simply not fed (feed below)
      if (input.localFile !== undefined && waitingBytes[i] > REJECT_BUFFER_BYTES) setPause(i, true);
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
        setPause(head, false);
      }
      wakeAll();
    }
  };

  const threads: ScanThread[] = [];
  const finished: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const first = i === 0;
    const readFrom = first ? (input.fromIsRecordStart ? input.from : input.from - 1) : cuts[i] - 1;
    // From S3 the batches travel through a ring of RING_SLOTS shared slots per thread: no allocation, no
    // copy into the thread, no garbage for either heap to collect.
    const ring = input.localFile === undefined ? new SharedArrayBuffer(RING_SLOTS * batchBytes) : undefined;
    const thread = ready[i] ?? new ScanThread(input.op.name, input.rawConfig, parsedConfig, input.fieldScanner);
    thread.worker.ref();
    threads.push(thread);
    const start: ThreadStart = {
      t: 'start',
      maxRecordBytes: input.maxRecordBytes,
      sourceOffset: readFrom,
      skipPartialFirst: !(first && input.fromIsRecordStart),
      end: cuts[i + 1],
      flags: flagsBuffer,
      index: i,
      file: input.localFile,
      ring,
      batchBytes,
    };
    thread.worker.postMessage(start);
    finished.push(
      new Promise<void>((resolve) => {
        thread.listen((event) => {
          if (event.kind === 'error') {
            fail(event.error);
            resolve();
            return;
          }
          if (event.kind === 'exit') {
            if (!done[i]) fail(new Error(`scan thread ${i} exited (code ${event.code}) before finishing its sub-range`));
            resolve();
            return;
          }
          const m = event.message;
          if (m.t === 'ack' || m.t === 'rejects') {
            if (m.t === 'ack') inFlight[i]--;
            take(i, m.rejects);
            wake(i);
          } else if (m.t === 'done') {
            take(i, m.rejects);
            // Rebuilt as it arrives, while later sub-ranges are still being scanned.
            try {
              restored[i] = (input.op.restore ?? input.op.deserialize)(JSON.parse(m.state) as Record<string, unknown>) as S;
            } catch (err) {
              fail(err as Error);
            }
            done[i] = m;
            advanceHead();
            wake(i);
            resolve();
          } else {
            fail(Object.assign(new Error(m.message), { stack: m.stack }));
            resolve();
          }
        });
      }),
    );
    if (ring !== undefined) finished.push(feed(i, readFrom, thread.worker, Buffer.from(ring)));
  }

  async function feed(i: number, readFrom: number, worker: Worker, ring: Buffer): Promise<void> {
    const stopped = () => done[i] !== undefined || failure !== undefined;
    let source: AsyncIterable<Buffer>;
    try {
      source = await input.open(readFrom);
    } catch (err) {
      fail(err as Error);
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
      fail(err as Error);
    }
  }

  try {
    await Promise.all(finished);
    await writes;
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
    // Stopped, not waited for: tearing an isolate down takes tens of milliseconds that the merge and the
    // output need not wait for, and an unref'd thread never holds the process open.
    for (const t of threads) t.stop();
  }
  if (failure) throw failure;

  const states: S[] = [];
  let bytesRead = 0;
  let stoppedAt: number | undefined;
  for (let i = 0; i < n; i++) {
    const d = done[i]!;
    states.push(restored[i]);
    bytesRead += d.bytesRead;
    if (d.stoppedAt !== undefined) {
      stoppedAt = d.stoppedAt;
      break;
    }
  }
  return { states, stoppedAt, bytesRead, threads: n };
}

/** The loop a scan thread runs: its sub-range, read from its file or from the batches it is sent, scanned with the operation's step. */
export async function runScanThread(
  operation: (name: string, rawConfig: unknown, parsedConfig: unknown) => { op: ThreadOperation; config: unknown },
): Promise<void> {
  if (isMainThread || !parentPort) throw new Error('runScanThread runs in a worker thread started by scanThreaded');
  const port = parentPort;
  const d = workerData as ThreadData;
  // The first message is the start; from S3, the ring's batches follow.
  let start: ThreadStart | undefined;
  let started: (() => void) | undefined;
  const queue: (Buffer | null)[] = [];
  let wakeUp: (() => void) | undefined;
  port.on('message', (m: ThreadStart | { t: 'data'; slot: number; len: number } | { t: 'end' }) => {
    if (m.t === 'start') {
      start = m;
      started?.();
      return;
    }
    queue.push(m.t === 'data' ? Buffer.from(start!.ring!, m.slot * start!.batchBytes, m.len) : null);
    wakeUp?.();
  });
  try {
    const { op, config } = operation(d.operation, d.config, d.parsedConfig);
    const state = op.init(config) as RecordCounts;
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
    const fastLines = d.fieldScanner ? bindScanLines(op, state) : undefined;
    // Ready; a prestarted thread waits here until its chunk is known.
    if (start === undefined) await new Promise<void>((r) => (started = r));
    const s = start!;
    const flags = new Int32Array(s.flags);
    const stopped = () => Atomics.load(flags, 0) === 1;
    let source: AsyncIterable<Buffer>;
    if (s.file !== undefined) {
      const file = s.file;
      const buffer = Buffer.allocUnsafe(s.batchBytes);
      source = {
        async *[Symbol.asyncIterator]() {
          const fd = openSync(file, 'r');
          try {
            let at = s.sourceOffset;
            for (;;) {
              // Before the next buffer: hand over this one's rejects, and wait while told to pause.
              if (rejects.length > 0) {
                port.postMessage({ t: 'rejects', rejects });
                rejects = [];
              }
              while (Atomics.load(flags, 1 + s.index) === 1 && !stopped()) Atomics.wait(flags, 1 + s.index, 1, 1000);
              // Synchronous reads: this thread has nothing else to do meanwhile, and the scan copies
              // what it keeps of a buffer (a partial record) before asking for the next one.
              const got = readSync(fd, buffer, 0, buffer.length, at);
              if (got === 0) return;
              at += got;
              yield got === buffer.length ? buffer : buffer.subarray(0, got);
            }
          } finally {
            closeSync(fd);
          }
        },
      };
    } else {
      // A batch is acknowledged (with the rejects found so far) when the scan asks for the next one: only
      // then is it fully consumed, whether or not it held a record boundary.
      let pulled = false;
      source = {
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
    }
    const scan = await scanRecords(
      source,
      {
        format: 'jsonl',
        sourceOffset: s.sourceOffset,
        skipPartialFirst: s.skipPartialFirst,
        end: s.end,
        maxRecordBytes: s.maxRecordBytes,
        values: 'native',
        fastLines,
        shouldStop: stopped,
      },
      sink,
    );
    port.postMessage({ t: 'done', state: JSON.stringify(op.serialize(state)), stoppedAt: scan.stoppedAt, bytesRead: scan.bytesRead, rejects });
  } catch (err) {
    port.postMessage({ t: 'error', message: (err as Error).message, stack: (err as Error).stack });
  }
}

/** True in a thread started by scanThreaded (an entrypoint then calls runScanThread instead of its main). */
export function isScanThread(): boolean {
  return !isMainThread && (workerData as { mark?: unknown } | null)?.mark === SCAN_THREAD_MARK;
}
