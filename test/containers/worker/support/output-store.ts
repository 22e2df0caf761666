import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as http from 'http';
import * as net from 'net';

/**
 * A second S3-compatible endpoint for the worker's output (stands in for R2/MinIO): its own
 * moto_server process on loopback, reached with its own credentials, plus what the tests need to look
 * at it from outside (the aws CLI's `s3api list-multipart-uploads`).
 */
export interface OutputStore {
  endpoint: string;
  client(endpoint?: string): S3Client;
  /** OUTPUT_S3_* variables for a worker process writing here (optionally through another endpoint). */
  env(endpoint?: string): Record<string, string>;
  createBucket(bucket: string): Promise<void>;
  /** Open multipart uploads of the bucket, as `aws s3api list-multipart-uploads` reports them. */
  openUploads(bucket: string): { Key: string; UploadId: string }[];
  keys(bucket: string, prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

export const OUTPUT_CREDENTIALS = { accessKeyId: 'photos-output-key', secretAccessKey: 'photos-output-secret' };

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startOutputStore(): Promise<OutputStore> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).status < 500) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      proc.kill();
      throw new Error(`second moto_server did not start on ${endpoint}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = (via = endpoint) =>
    new S3Client({ endpoint: via, region: 'auto', forcePathStyle: true, credentials: OUTPUT_CREDENTIALS, maxAttempts: 2 });
  const admin = client();
  return {
    endpoint,
    client,
    env: (via = endpoint) => ({
      OUTPUT_S3_ENDPOINT: via,
      OUTPUT_S3_REGION: 'auto',
      OUTPUT_S3_ACCESS_KEY_ID: OUTPUT_CREDENTIALS.accessKeyId,
      OUTPUT_S3_SECRET_ACCESS_KEY: OUTPUT_CREDENTIALS.secretAccessKey,
      OUTPUT_S3_FORCE_PATH_STYLE: 'true',
    }),
    async createBucket(bucket) {
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    openUploads(bucket) {
      const r = spawnSync('aws', ['s3api', 'list-multipart-uploads', '--bucket', bucket, '--endpoint-url', endpoint, '--output', 'json'], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME ?? '/tmp',
          AWS_ACCESS_KEY_ID: OUTPUT_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: OUTPUT_CREDENTIALS.secretAccessKey,
          AWS_DEFAULT_REGION: 'us-east-1',
        },
      });
      if (r.status !== 0) throw new Error(`aws s3api list-multipart-uploads failed: ${r.stderr}`);
      const out = r.stdout.trim();
      return out ? ((JSON.parse(out) as { Uploads?: { Key: string; UploadId: string }[] }).Uploads ?? []) : [];
    },
    async keys(bucket, prefix) {
      const res = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (res.Contents ?? []).map((o) => o.Key!);
    },
    async close() {
      admin.destroy();
      await new Promise<void>((r) => {
        if (proc.exitCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      });
    },
  };
}

/**
 * An HTTP proxy in front of an S3 endpoint that answers `500 InternalError` to the requests `fail`
 * picks and forwards the rest unchanged: a store that breaks in the middle of an upload.
 */
export async function startFaultyProxy(
  target: string,
  fail: (req: http.IncomingMessage) => boolean,
): Promise<{ endpoint: string; failed: () => number; close(): Promise<void> }> {
  const t = new URL(target);
  let failed = 0;
  const server = http.createServer((req, res) => {
    if (fail(req)) {
      failed++;
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
      return;
    }
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failed: () => failed,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
