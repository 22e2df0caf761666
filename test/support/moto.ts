/**
 * Test helpers for the one moto_server started by jest's globalSetup.
 * Usage in a suite:  beforeAll(resetMoto); const env = motoEnv();
 */
export const REGION = 'us-east-1';

export function motoEndpoint(): string {
  const endpoint = process.env.MOTO_ENDPOINT;
  if (!endpoint) throw new Error('MOTO_ENDPOINT is not set: the jest globalSetup did not start moto_server');
  return endpoint;
}

/** Wipes every resource in moto, then puts Batch back into no-Docker mode. */
export async function resetMoto(): Promise<void> {
  const endpoint = motoEndpoint();
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
  await fetch(`${endpoint}/moto-api/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ batch: { use_docker: false } }),
  });
}

/** Options for any AWS SDK v3 client pointed at moto. */
export function motoClientConfig(): {
  region: string;
  endpoint: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    region: REGION,
    endpoint: motoEndpoint(),
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/** Environment for a child process (worker, CLI, aws CLI) that must talk to moto. */
export function motoEnv(): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL: motoEndpoint(),
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    S3_FORCE_PATH_STYLE: 'true',
  };
}
