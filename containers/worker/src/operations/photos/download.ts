import { createHash } from 'crypto';
import { createWriteStream, WriteStream } from 'fs';
import { rm } from 'fs/promises';
import { once } from 'events';
import { crc32 } from 'zlib';

/**
 * Downloads one photo to a local spool file, streaming: bytes are hashed (sha256 for the manifest,
 * CRC-32 for the ZIP) and counted as they arrive, and the download is cut off as soon as more than
 * `maxFileBytes` have been received, whatever Content-Length said (or whether it was sent at all).
 * `fetch` (undici) decodes `Content-Encoding: gzip/deflate/br`; the limit applies to the decoded bytes,
 * so a small compressed body cannot expand into a large file.
 */
export interface DownloadLimits {
  retries: number;
  backoffMs: number;
  /** Longest wait for the response headers or for the next bytes of the body. */
  timeoutMs: number;
  maxFileBytes: number;
}

export interface Spooled {
  size: number;
  sha256: string;
  crc: number;
}

export type DownloadResult =
  | ({ ok: true; attempts: number } & Spooled)
  | { ok: false; error: string; attempts: number; interrupted?: boolean };

/** A failure no retry can fix (4xx but 429, too large). */
class PermanentError extends Error {}
/** The local disk failed: not the photo's fault, so the job fails rather than listing the photo. */
export class SpoolError extends Error {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

async function closeFile(out: WriteStream): Promise<void> {
  if (out.closed) return;
  out.end();
  await once(out, 'close');
}

async function fetchOnce(url: string, file: string, limits: DownloadLimits, signal?: AbortSignal): Promise<Spooled> {
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, limits.timeoutMs);
  };
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let out: WriteStream | undefined;
  let diskError: Error | undefined;
  arm();
  try {
    const res = await fetch(url, { signal: controller.signal, redirect: 'follow' });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const msg = `HTTP ${res.status}`;
      if (res.status === 429 || res.status >= 500) throw new Error(msg);
      throw new PermanentError(msg);
    }
    const encoding = (res.headers.get('content-encoding') ?? 'identity').toLowerCase();
    const lengthHeader = res.headers.get('content-length');
    // With an encoding, Content-Length counts the encoded bytes; only an identity length is the file's.
    const length = encoding === 'identity' && lengthHeader !== null ? Number(lengthHeader) : undefined;
    if (length !== undefined && length > limits.maxFileBytes) {
      controller.abort();
      throw new PermanentError(`Content-Length ${length} is more than maxFileBytes ${limits.maxFileBytes}`);
    }
    out = createWriteStream(file);
    out.on('error', (err) => {
      diskError = err;
    });
    const hash = createHash('sha256');
    let crc = 0;
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        arm();
        size += chunk.length;
        if (size > limits.maxFileBytes) {
          controller.abort();
          throw new PermanentError(`more than maxFileBytes ${limits.maxFileBytes} bytes received; download cut off`);
        }
        hash.update(chunk);
        crc = crc32(chunk, crc);
        if (diskError) throw new SpoolError(`spool file ${file}: ${diskError.message}`);
        if (!out.write(chunk)) await once(out, 'drain');
      }
    }
    await closeFile(out);
    if (diskError) throw new SpoolError(`spool file ${file}: ${(diskError as Error).message}`);
    if (length !== undefined && size !== length) throw new Error(`short body: ${size} of ${length} bytes`);
    return { size, sha256: hash.digest('hex'), crc };
  } catch (err) {
    if (timedOut && !(err instanceof PermanentError) && !(err instanceof SpoolError)) {
      throw new Error(`no bytes for ${limits.timeoutMs} ms (timeoutMs)`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (out && !out.closed) out.destroy();
  }
}

/** Retries network errors, timeouts, short bodies, 429 and 5xx with exponential backoff and jitter. */
export async function downloadToFile(
  url: string,
  file: string,
  limits: DownloadLimits,
  signal?: AbortSignal,
  onRetry?: (attempt: number, error: string) => void,
): Promise<DownloadResult> {
  let attempts = 0;
  for (;;) {
    if (signal?.aborted) return { ok: false, error: 'interrupted', attempts, interrupted: true };
    attempts++;
    try {
      return { ok: true, attempts, ...(await fetchOnce(url, file, limits, signal)) };
    } catch (err) {
      await rm(file, { force: true });
      if (err instanceof SpoolError) throw err;
      if (signal?.aborted) return { ok: false, error: 'interrupted', attempts, interrupted: true };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const message = e.cause?.code ? `${e.message}: ${e.cause.code}` : e.message;
      if (err instanceof PermanentError || attempts > limits.retries) return { ok: false, error: message, attempts };
      onRetry?.(attempts, message);
      await sleep(limits.backoffMs * 2 ** (attempts - 1) * (1 + Math.random() / 2), signal);
    }
  }
}
