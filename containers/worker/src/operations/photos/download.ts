import { createHash } from 'crypto';
import { once } from 'events';
import { createWriteStream, WriteStream } from 'fs';
import { rm } from 'fs/promises';
import * as http from 'http';
import * as https from 'https';
import { pipeline, Readable } from 'stream';
import { crc32, createBrotliDecompress, createGunzip, createInflate } from 'zlib';
import { HostPolicy, RefusedUrl, resolveAllowed } from './url-guard';

/**
 * Downloads one photo to a local spool file, streaming: bytes are hashed (sha256 for the manifest,
 * CRC-32 for the ZIP) and counted as they arrive, and the download is cut off as soon as more than
 * `maxFileBytes` have been received, whatever Content-Length said (or whether it was sent at all).
 * `Content-Encoding: gzip/deflate/br` is decoded; the limit applies to the decoded bytes, so a small
 * compressed body cannot expand into a large file. Node's http/https clients rather than fetch: the
 * SSRF rules (./url-guard) need the connection made to the address that was checked, which fetch
 * cannot be told, and redirects are followed here so each hop is checked again.
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

/** A failure no retry can fix (4xx but 429, too large, a refused URL). */
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

/** Write buffer of a spool file. */
const SPOOL_BUFFER_BYTES = 1 << 20;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Redirects followed per download (browsers allow 20; a photo host needs one or two). */
export const MAX_REDIRECTS = 5;
/** Keep-alive connections, reused across photos of the same host (as fetch did). */
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

/**
 * GET `url` with the SSRF rules of ./url-guard: resolve, check every address, connect to a checked one
 * (the request's `lookup` returns only those), and the same again for each redirect's target, at most
 * MAX_REDIRECTS of them. Resolves with the final response (status not yet checked).
 */
async function get(url: string, policy: HostPolicy, signal: AbortSignal): Promise<http.IncomingMessage> {
  let current: URL;
  try {
    current = new URL(url);
  } catch {
    throw new RefusedUrl(`${JSON.stringify(url)} is not a valid URL`);
  }
  for (let hop = 0; ; hop++) {
    const addresses = await resolveAllowed(current, policy);
    const pinned = ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      if (options.all) cb(null, addresses);
      else cb(null, addresses[0].address, addresses[0].family);
    }) as unknown as typeof import('dns').lookup;
    const protocol = current.protocol as 'http:' | 'https:';
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (protocol === 'https:' ? https : http).request(current, {
        method: 'GET',
        agent: agents[protocol],
        lookup: pinned,
        signal,
        headers: { 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'cdk-batch-platform-worker bundle-photos' },
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (!REDIRECTS.has(status) || !location) return res;
    res.resume();
    if (hop >= MAX_REDIRECTS) throw new PermanentError(`more than ${MAX_REDIRECTS} redirects (last to ${location})`);
    try {
      current = new URL(location, current);
    } catch {
      throw new PermanentError(`HTTP ${status} redirect to an invalid URL ${JSON.stringify(location)}`);
    }
  }
}

/** Decoders for Content-Encoding, outermost last (as listed); unknown encodings are a permanent failure. */
function decoded(res: http.IncomingMessage): Readable {
  const encodings = (res.headers['content-encoding'] ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '' && e !== 'identity');
  let body: Readable = res;
  for (const e of encodings.reverse()) {
    const decoder =
      e === 'gzip' || e === 'x-gzip' ? createGunzip() : e === 'deflate' ? createInflate() : e === 'br' ? createBrotliDecompress() : undefined;
    if (!decoder) throw new PermanentError(`unsupported Content-Encoding ${e}`);
    body = pipeline(body, decoder, () => undefined);
  }
  return body;
}

async function fetchOnce(url: string, file: string, limits: DownloadLimits, policy: HostPolicy, signal?: AbortSignal): Promise<Spooled> {
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
  let res: http.IncomingMessage | undefined;
  let diskError: Error | undefined;
  arm();
  try {
    res = await get(url, policy, controller.signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      res.resume();
      const msg = `HTTP ${status}`;
      if (status === 429 || status >= 500) throw new Error(msg);
      throw new PermanentError(msg);
    }
    const body = decoded(res);
    const lengthHeader = res.headers['content-length'];
    // With an encoding, Content-Length counts the encoded bytes; only an identity length is the file's.
    const length = body === res && lengthHeader !== undefined ? Number(lengthHeader) : undefined;
    if (length !== undefined && length > limits.maxFileBytes) {
      throw new PermanentError(`Content-Length ${length} is more than maxFileBytes ${limits.maxFileBytes}`);
    }
    // 1 MiB of write buffer rather than 16 KiB: a 64 KiB network chunk then does not wait for its disk
    // write before the next is read (measured in bench/photos-bench.ts); bounded per download, not per photo.
    out = createWriteStream(file, { highWaterMark: SPOOL_BUFFER_BYTES });
    out.on('error', (err) => {
      diskError = err;
    });
    const hash = createHash('sha256');
    let crc = 0;
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      arm();
      size += chunk.length;
      if (size > limits.maxFileBytes) {
        throw new PermanentError(`more than maxFileBytes ${limits.maxFileBytes} bytes received; download cut off`);
      }
      hash.update(chunk);
      crc = crc32(chunk, crc);
      if (diskError) throw new SpoolError(`spool file ${file}: ${diskError.message}`);
      if (!out.write(chunk)) await once(out, 'drain');
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
    // A response not read to its end is closed, not left to hold the connection.
    if (res && !res.complete) res.destroy();
    if (out && !out.closed) out.destroy();
  }
}

/** Retries network errors, timeouts, short bodies, 429 and 5xx with exponential backoff and jitter. */
export async function downloadToFile(
  url: string,
  file: string,
  limits: DownloadLimits,
  policy: HostPolicy,
  signal?: AbortSignal,
  onRetry?: (attempt: number, error: string) => void,
): Promise<DownloadResult> {
  let attempts = 0;
  for (;;) {
    if (signal?.aborted) return { ok: false, error: 'interrupted', attempts, interrupted: true };
    attempts++;
    try {
      return { ok: true, attempts, ...(await fetchOnce(url, file, limits, policy, signal)) };
    } catch (err) {
      await rm(file, { force: true });
      if (err instanceof SpoolError) throw err;
      if (signal?.aborted) return { ok: false, error: 'interrupted', attempts, interrupted: true };
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const message = e.cause?.code ? `${e.message}: ${e.cause.code}` : e.message;
      if (err instanceof PermanentError || err instanceof RefusedUrl || attempts > limits.retries) return { ok: false, error: message, attempts };
      onRetry?.(attempts, message);
      await sleep(limits.backoffMs * 2 ** (attempts - 1) * (1 + Math.random() / 2), signal);
    }
  }
}
