import * as cliProgress from 'cli-progress';

/** What the local runner reports while chunks finish. */
export interface ProgressSnapshot {
  readonly chunksDone: number;
  readonly chunksFailed: number;
  readonly chunkCount: number;
  readonly records: number;
  readonly estimatedRecords: number;
  readonly elapsedMs: number;
}

export interface ProgressReporter {
  start(chunkCount: number, estimatedRecords: number): void;
  update(p: ProgressSnapshot): void;
  stop(): void;
}

export function formatRate(records: number, ms: number): string {
  return ms > 0 ? `${Math.round((records * 1000) / ms).toLocaleString('en-US')} rec/s` : '-';
}

function eta(p: ProgressSnapshot): string {
  const finished = p.chunksDone + p.chunksFailed;
  if (finished === 0 || finished >= p.chunkCount) return finished >= p.chunkCount ? '0s' : '?';
  const seconds = Math.round(((p.elapsedMs / finished) * (p.chunkCount - finished)) / 1000);
  return `${seconds}s`;
}

/** A progress bar (chunks, records, rate, ETA) on a terminal; plain lines otherwise (CI, pipes). */
export function createProgressReporter(
  stream: { write(text: string): unknown; isTTY?: boolean } = process.stderr,
  tty: boolean = Boolean(stream.isTTY),
): ProgressReporter {
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stream as NodeJS.WritableStream,
        format: 'chunks {bar} {value}/{total} | {records} records | {rate} | ETA {etaText} {failed}',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    return {
      start: (n) => bar.start(n, 0, { records: 0, rate: '-', etaText: '?', failed: '' }),
      update: (p) =>
        bar.update(p.chunksDone + p.chunksFailed, {
          records: p.records.toLocaleString('en-US'),
          rate: formatRate(p.records, p.elapsedMs),
          etaText: eta(p),
          failed: p.chunksFailed > 0 ? `| ${p.chunksFailed} failed` : '',
        }),
      stop: () => bar.stop(),
    };
  }
  return {
    start: (n, est) => stream.write(`run-local: ${n} chunk(s), ~${est.toLocaleString('en-US')} records\n`),
    update: (p) =>
      stream.write(
        `run-local: ${p.chunksDone + p.chunksFailed}/${p.chunkCount} chunks` +
          `${p.chunksFailed > 0 ? ` (${p.chunksFailed} failed)` : ''}, ${p.records.toLocaleString('en-US')} records, ` +
          `${formatRate(p.records, p.elapsedMs)}, ETA ${eta(p)}\n`,
      ),
    stop: () => undefined,
  };
}

/** Reports nothing (library callers, tests). */
export const silentReporter: ProgressReporter = { start: () => undefined, update: () => undefined, stop: () => undefined };
