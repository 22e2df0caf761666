import { execFileSync } from 'child_process';
import { createSign } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * A throwaway CA and an SNS-like signing certificate made with the openssl CLI, plus a signer that
 * builds SNS messages exactly as AWS documents them. Nothing here is trusted outside the test.
 */
export interface TestSigner {
  readonly certPem: string;
  readonly otherCertPem: string;
  readonly certUrl: string;
  sign(fields: Record<string, string>, version?: '1' | '2', certUrl?: string): Record<string, string>;
  cleanup(): void;
}

const NOTIFICATION = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const CONFIRMATION = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

export function createTestSigner(): TestSigner {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sns-signer-'));
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Throwaway Test CA']);
  for (const name of ['leaf', 'other']) {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=sns.amazonaws.com']);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1']);
  }
  const key = fs.readFileSync(path.join(dir, 'leaf.key'), 'utf8');
  const certPem = fs.readFileSync(path.join(dir, 'leaf.pem'), 'utf8');
  const otherCertPem = fs.readFileSync(path.join(dir, 'other.pem'), 'utf8');
  const certUrl = 'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem';

  return {
    certPem,
    otherCertPem,
    certUrl,
    sign(fields, version = '2', url = certUrl) {
      const order = fields.Type === 'Notification' ? NOTIFICATION : CONFIRMATION;
      let canonical = '';
      for (const f of order) if (fields[f] !== undefined) canonical += `${f}\n${fields[f]}\n`;
      const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
      signer.update(canonical, 'utf8');
      return { ...fields, SignatureVersion: version, SigningCertURL: url, Signature: signer.sign(key, 'base64') };
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
