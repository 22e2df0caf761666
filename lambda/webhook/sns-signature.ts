import { createVerify, X509Certificate } from 'node:crypto';

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

const ALGORITHMS: Record<string, string> = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' };

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
  const type = msg.Type;
  const fields = type === 'Notification' ? NOTIFICATION_FIELDS : CONFIRMATION_FIELDS;
  let out = '';
  for (const field of fields) {
    const value = msg[field];
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
    throw new SnsVerificationError(`${what} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new SnsVerificationError(`${what} must use https, got ${url.protocol}`);
  if (url.username || url.password || url.port) throw new SnsVerificationError(`${what} must not carry credentials or a port`);
  const host = SNS_HOST.exec(url.hostname);
  if (!host) throw new SnsVerificationError(`${what} host ${url.hostname} is not an Amazon SNS host`);
  const china = host[2] === '.cn';
  if (china !== host[1].startsWith('cn-')) throw new SnsVerificationError(`${what} host ${url.hostname} mixes partitions`);
  if (what === 'SigningCertURL' && (!url.pathname.endsWith('.pem') || url.search || url.hash)) {
    throw new SnsVerificationError('SigningCertURL must name a .pem file without query');
  }
  return url;
}

export type CertificateFetcher = (url: string) => Promise<string>;

/** Fetches PEM certificates once per URL; concurrent requests share one fetch; failures are not cached. */
export class CertificateCache {
  private readonly entries = new Map<string, Promise<X509Certificate>>();

  constructor(private readonly fetcher: CertificateFetcher) {}

  get(url: string): Promise<X509Certificate> {
    let entry = this.entries.get(url);
    if (!entry) {
      entry = this.fetcher(url).then((pem) => {
        try {
          return new X509Certificate(pem);
        } catch (err) {
          throw new Error(`certificate at ${url} is not a PEM X.509 certificate: ${(err as Error).message}`);
        }
      });
      entry.catch(() => this.entries.delete(url));
      this.entries.set(url, entry);
    }
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Default fetcher: HTTPS GET with a timeout; only used after checkSnsUrl accepted the URL. */
export async function fetchCertificate(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  if (!res.ok) throw new Error(`GET ${url} returned HTTP ${res.status}`);
  const pem = await res.text();
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`GET ${url} did not return a PEM certificate`);
  return pem;
}

/**
 * Throws SnsVerificationError unless `msg` is an SNS message of a known type whose signature the
 * certificate at its (allowed) SigningCertURL verifies, and that certificate is valid at `now`.
 * Errors fetching the certificate are thrown as plain Errors (the caller answers 5xx so SNS retries).
 */
export async function verifySnsMessage(msg: Record<string, unknown>, certs: CertificateCache, now: Date): Promise<SnsMessage> {
  if (typeof msg.Type !== 'string' || !SNS_MESSAGE_TYPES.includes(msg.Type as SnsMessageType)) {
    throw new SnsVerificationError(`Type ${JSON.stringify(msg.Type)} is not one of ${SNS_MESSAGE_TYPES.join(', ')}`);
  }
  if (typeof msg.Signature !== 'string' || msg.Signature === '') throw new SnsVerificationError('message is not signed');
  const algorithm = ALGORITHMS[String(msg.SignatureVersion)];
  if (!algorithm) throw new SnsVerificationError(`SignatureVersion ${JSON.stringify(msg.SignatureVersion)} is not 1 or 2`);
  const canonical = canonicalString(msg);
  const certUrl = checkSnsUrl(msg.SigningCertURL, 'SigningCertURL');
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
    ok = verifier.verify(cert.publicKey, Buffer.from(msg.Signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new SnsVerificationError('signature does not match the message');
  return msg as unknown as SnsMessage;
}
