import { createHmac, timingSafeEqual } from 'crypto';
import { lookup as dnsLookup, LookupAddress } from 'dns';
import { request } from 'https';
import { BlockList, LookupFunction } from 'net';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { addressProblem, literalAddress, staticUrlProblem } from './callback-url';

export { addressProblem, parseAllowedCidrs, staticUrlProblem } from './callback-url';

/**
 * Signed job callbacks: the JSON body POSTed to a job's `CALLBACK_URL` when it finishes, the HMAC
 * that lets the receiver check it came from the platform, the address check that keeps the platform
 * from being used to reach private networks, and the delivery with retries and a dead-letter queue.
 * Format and verification: docs/workloads/geoprocessing.md "Executor" and docs/security.md.
 */

/** Unix seconds at signing; part of the signed text, so a replayed body is refused after the tolerance. */
export const TIMESTAMP_HEADER = 'x-batch-platform-timestamp';
/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export const SIGNATURE_HEADER = 'x-batch-platform-signature';
/** Receivers should refuse a timestamp further than this from their clock. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;
export const DEFAULT_CALLBACK_ATTEMPTS = 3;
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;

export function signCallback(secret: string, timestampSeconds: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`;
}

/** What a receiver runs: true when the signature matches and the timestamp is within the tolerance. */
export function verifyCallbackSignature(
  secret: string,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
): boolean {
  if (!timestampHeader || !signatureHeader || !/^\d{1,12}$/.test(timestampHeader)) return false;
  const ts = Number(timestampHeader);
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signCallback(secret, ts, body));
  const given = Buffer.from(signatureHeader);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export class CallbackRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackRefusedError';
  }
}

export interface PostOptions {
  /** Private ranges this stage allows (parseAllowedCidrs). */
  readonly allowed?: BlockList;
  /** Extra CA certificates to trust (a test receiver's self-signed certificate). */
  readonly ca?: string | Buffer;
  /** @default 5000 */
  readonly timeoutMs?: number;
  /** @default dns.lookup */
  readonly resolve?: typeof dnsLookup;
}

/**
 * A lookup that resolves every address of the host and refuses the connection when any is
 * forbidden, then connects to the address it checked: a DNS answer that changes between a check and
 * the connection (rebinding) cannot slip a private address in.
 */
function checkedLookup(allowed: BlockList | undefined, resolve: typeof dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { all: true, family: typeof options === 'object' ? options.family : undefined }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const list = Array.isArray(addresses) ? addresses : [];
      if (list.length === 0) return callback(new CallbackRefusedError(`${hostname} resolves to no address`), '', 0);
      for (const a of list) {
        const problem = addressProblem(a.address, allowed);
        if (problem) return callback(new CallbackRefusedError(`callback host ${hostname} resolves to ${problem}`), '', 0);
      }
      if (typeof options === 'object' && options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  };
}

/** One POST; resolves with the HTTP status. Redirects are not followed (a 3xx is a failure). */
export function postSigned(url: string, body: string, headers: Record<string, string>, options: PostOptions = {}): Promise<number> {
  const problem = staticUrlProblem(url, options.allowed);
  if (problem) return Promise.reject(new CallbackRefusedError(`callback URL refused: ${problem}`));
  const target = new URL(url);
  const literal = literalAddress(target);
  return new Promise((resolvePromise, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
        ca: options.ca,
        // A fresh connection every time: a pooled socket would skip the lookup and its address check.
        agent: false,
        // An IP literal never goes through lookup; it was checked by staticUrlProblem above.
        lookup: literal ? undefined : checkedLookup(options.allowed, options.resolve ?? dnsLookup),
        timeout: options.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS,
        servername: literal ? undefined : target.hostname,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolvePromise(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`callback timed out after ${options.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface CallbackDelivery {
  /** The HMAC key (from Secrets Manager; see loadCallbackSecret). */
  readonly secret: () => Promise<string>;
  /** Where a callback that failed every attempt (or was refused) is sent, with the reason. */
  readonly deadLetterQueueUrl?: string;
  readonly sqs?: SQSClient;
  /** @default 3 */
  readonly attempts?: number;
  /** First retry delay; doubled each attempt, with jitter. @default 1000 */
  readonly backoffMs?: number;
  readonly post?: PostOptions;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
}

export type DeliveryOutcome = { readonly delivered: true; readonly attempts: number; readonly status: number } | { readonly delivered: false; readonly attempts: number; readonly reason: string; readonly deadLettered: boolean };

/**
 * Signs `payload` and POSTs it to `url`: retries network errors, timeouts, 429 and 5xx with
 * exponential backoff; a refused URL, another 4xx or the last failure goes to the dead-letter queue
 * with the body, so nothing is lost silently. The same body and timestamp are sent on every attempt.
 */
export async function deliverCallback(url: string, payload: Record<string, unknown>, delivery: CallbackDelivery): Promise<DeliveryOutcome> {
  const body = JSON.stringify(payload);
  const timestamp = Math.floor((delivery.now ?? (() => new Date()))().getTime() / 1000);
  const headers = { [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signCallback(await delivery.secret(), timestamp, body) };
  const attempts = Math.max(1, delivery.attempts ?? DEFAULT_CALLBACK_ATTEMPTS);
  const sleep = delivery.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let reason = '';
  let attempt = 0;
  while (attempt < attempts) {
    attempt++;
    try {
      const status = await postSigned(url, body, headers, delivery.post);
      if (status >= 200 && status < 300) return { delivered: true, attempts: attempt, status };
      reason = `receiver answered HTTP ${status}`;
      if (status !== 429 && status < 500) break;
    } catch (err) {
      reason = (err as Error).message;
      if (err instanceof CallbackRefusedError) break;
    }
    if (attempt < attempts) await sleep((delivery.backoffMs ?? 1000) * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
  }
  let deadLettered = false;
  if (delivery.deadLetterQueueUrl && delivery.sqs) {
    await delivery.sqs.send(
      new SendMessageCommand({
        QueueUrl: delivery.deadLetterQueueUrl,
        MessageBody: JSON.stringify({ url, reason, attempts: attempt, timestamp, body: payload }),
      }),
    );
    deadLettered = true;
  }
  return { delivered: false, attempts: attempt, reason, deadLettered };
}
