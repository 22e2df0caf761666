import { createVerify, X509Certificate } from 'node:crypto';
import { own, preview } from './bounded';

/**
 * Verification of Amazon SNS HTTP(S) messages, after
 * https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
 * Trust comes from where the signing certificate is fetched: only an https URL on an SNS regional
 * host (commercial, China, GovCloud) ending in .pem is accepted, so a forged message must point at a
 * certificate AWS serves, and AWS only signs with its own key.
 */
export type SnsMessageType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

export const SNS_MESSAGE_TYPES: readonly SnsMessageType[] = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'];

export interface SnsMessage {
  readonly Type: SnsMessageType;
  readonly MessageId: string;
  readonly TopicArn: string;
  readonly Message: string;
  readonly Timestamp: string;
  readonly SignatureVersion: string;
  readonly Signature: string;
  readonly SigningCertURL: string;
  readonly Subject?: string;
  readonly Token?: string;
  readonly SubscribeURL?: string;
  readonly UnsubscribeURL?: string;
}

/** Fields signed, in the order AWS concatenates them. */
const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const;
const CONFIRMATION_FIELDS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const;

/** A Map, not an object literal: a SignatureVersion such as "constructor" or "__proto__" must not find an inherited key. */
const ALGORITHMS: ReadonlyMap<string, string> = new Map([
  ['1', 'RSA-SHA1'],
  ['2', 'RSA-SHA256'],
]);

export type SignatureVersion = '1' | '2';
export const SIGNATURE_VERSIONS: readonly SignatureVersion[] = ['1', '2'];

/** sns.<region>.amazonaws.com, sns.cn-<...>.amazonaws.com.cn, sns.us-gov-<...>.amazonaws.com */
const SNS_HOST = /^sns\.((?:[a-z]{2})(?:-gov)?-[a-z]+-\d{1,2})\.amazonaws\.com(\.cn)?$/;

export class SnsVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnsVerificationError';
  }
}

/** The string AWS signed for this message. Throws if a field the type requires is missing. */
export function canonicalString(msg: Record<string, unknown>): string {
  const type = own(msg, 'Type');
  const fields = type === 'Notification' ? NOTIFICATION_FIELDS : CONFIRMATION_FIELDS;
  let out = '';
  for (const field of fields) {
    const value = own(msg, field);
    if (value === undefined && field === 'Subject') continue; // optional, and then not signed
    if (typeof value !== 'string') throw new SnsVerificationError(`field ${field} is missing or not a string`);
    out += `${field}\n${value}\n`;
  }
  return out;
}

/**
 * Accepts only https URLs on an SNS host (no port, no credentials, no query), path ending in `.pem`
 * for certificates. Returns the parsed URL.
 */
export function checkSnsUrl(raw: unknown, what: 'SigningCertURL' | 'SubscribeURL'): URL {
  if (typeof raw !== 'string') throw new SnsVerificationError(`${what} is missing`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SnsVerificationError(`${what} ${preview(raw)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new SnsVerificationError(`${what} must use https, got ${preview(url.protocol)}`);
  if (url.username || url.password || url.port) throw new SnsVerificationError(`${what} must not carry credentials or a port`);
  const host = SNS_HOST.exec(url.hostname);
  if (!host) throw new SnsVerificationError(`${what} host ${preview(url.hostname)} is not an Amazon SNS host`);
  const china = host[2] === '.cn';
  if (china !== host[1].startsWith('cn-')) throw new SnsVerificationError(`${what} host ${preview(url.hostname)} mixes partitions`);
  if (what === 'SigningCertURL' && (!url.pathname.endsWith('.pem') || url.search || url.hash)) {
    throw new SnsVerificationError('SigningCertURL must name a .pem file without query');
  }
  return url;
}

export type CertificateFetcher = (url: string) => Promise<string>;

export const DEFAULT_FAILED_FETCH_TTL_MS = 60_000;
export const DEFAULT_MAX_CACHED_CERTIFICATES = 64;
export const DEFAULT_CERTIFICATE_MAX_BYTES = 16 * 1024;
export const DEFAULT_CERTIFICATE_TIMEOUT_MS = 3000;

export interface CertificateCacheOptions {
  /** How long a failed fetch is remembered: the same URL is not fetched again within it. @default 60 s */
  readonly failedFetchTtlMs?: number;
  /** Entries kept (oldest evicted first), so invented URLs cannot grow the cache without end. @default 64 */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface CacheEntry {
  readonly cert: Promise<X509Certificate>;
  /** Set once the fetch failed: the failure is served from the cache until then. */
  failedUntil?: number;
}

/**
 * Fetches PEM certificates once per URL; concurrent requests share one fetch. A failed fetch is
 * cached for `failedFetchTtlMs` (negative cache): an invented `.pem` path on an SNS host costs at
 * most one outbound GET per window, however often it is sent. The cache holds at most `maxEntries`.
 */
export class CertificateCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly failedTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly fetcher: CertificateFetcher,
    options: CertificateCacheOptions = {},
  ) {
    this.failedTtl = options.failedFetchTtlMs ?? DEFAULT_FAILED_FETCH_TTL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_CACHED_CERTIFICATES;
    this.now = options.now ?? Date.now;
  }

  get(url: string): Promise<X509Certificate> {
    const cached = this.entries.get(url);
    if (cached && (cached.failedUntil === undefined || cached.failedUntil > this.now())) return cached.cert;
    if (cached) this.entries.delete(url);
    const cert = this.fetcher(url).then((pem) => {
      try {
        return new X509Certificate(pem);
      } catch (err) {
        throw new Error(`certificate at ${preview(url)} is not a PEM X.509 certificate: ${(err as Error).message}`);
      }
    });
    const entry: CacheEntry = { cert };
    cert.catch(() => {
      entry.failedUntil = this.now() + this.failedTtl;
    });
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(url, entry);
    return cert;
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface FetchCertificateOptions {
  /** Larger responses are refused (an SNS signing certificate is about 2 KB). @default 16 KiB */
  readonly maxBytes?: number;
  /** Covers connecting, headers and body. @default 3000 ms */
  readonly timeoutMs?: number;
}

/**
 * Default fetcher: GET with a timeout over the whole exchange, no redirects, and a bounded body (a
 * declared Content-Length above the bound is refused before reading; otherwise reading stops and the
 * connection is dropped at the bound). Only used after checkSnsUrl accepted the URL.
 */
export async function fetchCertificate(url: string, options: FetchCertificateOptions = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? DEFAULT_CERTIFICATE_MAX_BYTES;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`GET ${preview(url)} timed out`)), options.timeoutMs ?? DEFAULT_CERTIFICATE_TIMEOUT_MS);
  try {
    const res = await fetch(url, { signal: controller.signal, redirect: 'error' });
    if (!res.ok) {
      controller.abort();
      throw new Error(`GET ${preview(url)} returned HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      controller.abort();
      throw new Error(`GET ${preview(url)} declares ${declared} bytes; a certificate may have at most ${maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        total += chunk.byteLength;
        if (total > maxBytes) {
          controller.abort();
          throw new Error(`GET ${preview(url)} sent more than ${maxBytes} bytes; a certificate may have at most ${maxBytes}`);
        }
        chunks.push(Buffer.from(chunk));
      }
    }
    const pem = Buffer.concat(chunks).toString('utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`GET ${preview(url)} did not return a PEM certificate`);
    return pem;
  } finally {
    clearTimeout(timer);
  }
}

export const DEFAULT_CONFIRMATION_MAX_AGE_MS = 60 * 60 * 1000;
export const DEFAULT_NOTIFICATION_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** How far a Timestamp may lie in the future (clock skew between SNS and this Lambda). */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface VerifyOptions {
  /** Signature versions accepted. @default ['2'] (the JobNotifications topic signs with SHA256) */
  readonly signatureVersions?: readonly SignatureVersion[];
  /** Oldest Timestamp a SubscriptionConfirmation / UnsubscribeConfirmation may carry. @default 1 h */
  readonly confirmationMaxAgeMs?: number;
  /** Oldest Timestamp a Notification may carry. @default 24 h (SNS retries for up to an hour, throttled deliveries wait) */
  readonly notificationMaxAgeMs?: number;
}

/**
 * Throws SnsVerificationError unless `msg` is an SNS message of a known type, in an accepted
 * signature version, whose Timestamp lies inside its window, and whose signature the certificate at
 * its (allowed) SigningCertURL verifies, that certificate being valid at `now`. Everything that can
 * be refused without the network (type, version, fields, Timestamp, URL) is checked before the
 * certificate is fetched. Errors fetching the certificate are thrown as plain Errors (the caller
 * answers 5xx so SNS retries).
 */
export async function verifySnsMessage(msg: Record<string, unknown>, certs: CertificateCache, now: Date, options: VerifyOptions = {}): Promise<SnsMessage> {
  const type = own(msg, 'Type');
  if (typeof type !== 'string' || !SNS_MESSAGE_TYPES.includes(type as SnsMessageType)) {
    throw new SnsVerificationError(`Type ${preview(type)} is not one of ${SNS_MESSAGE_TYPES.join(', ')}`);
  }
  const signature = own(msg, 'Signature');
  if (typeof signature !== 'string' || signature === '') throw new SnsVerificationError('message is not signed');
  const accepted = options.signatureVersions ?? ['2'];
  const version = own(msg, 'SignatureVersion');
  const algorithm = typeof version === 'string' && (accepted as readonly string[]).includes(version) ? ALGORITHMS.get(version) : undefined;
  if (!algorithm) throw new SnsVerificationError(`SignatureVersion ${preview(version)} is not accepted; allowed: ${accepted.join(', ')}`);
  const canonical = canonicalString(msg);
  checkTimestamp(own(msg, 'Timestamp'), type === 'Notification' ? (options.notificationMaxAgeMs ?? DEFAULT_NOTIFICATION_MAX_AGE_MS) : (options.confirmationMaxAgeMs ?? DEFAULT_CONFIRMATION_MAX_AGE_MS), now);
  const certUrl = checkSnsUrl(own(msg, 'SigningCertURL'), 'SigningCertURL');
  const cert = await certs.get(certUrl.toString());
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (!(now.getTime() >= from && now.getTime() <= to)) {
    throw new SnsVerificationError(`signing certificate is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
  }
  const verifier = createVerify(algorithm);
  verifier.update(canonical, 'utf8');
  let ok = false;
  try {
    ok = verifier.verify(cert.publicKey, Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new SnsVerificationError('signature does not match the message');
  return msg as unknown as SnsMessage;
}

/** SNS writes ISO 8601 UTC (`2012-04-26T20:45:04.751Z`); anything else, or outside the window, is refused. */
function checkTimestamp(raw: unknown, maxAgeMs: number, now: Date): void {
  const at = typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(at)) throw new SnsVerificationError(`Timestamp ${preview(raw)} is not an ISO 8601 UTC time`);
  const age = now.getTime() - at;
  if (age > maxAgeMs) throw new SnsVerificationError(`Timestamp ${preview(raw)} is older than ${Math.round(maxAgeMs / 1000)} s (replayed or stale)`);
  if (age < -MAX_CLOCK_SKEW_MS) throw new SnsVerificationError(`Timestamp ${preview(raw)} lies more than ${MAX_CLOCK_SKEW_MS / 1000} s in the future`);
}
