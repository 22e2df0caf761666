import type { BatchJobClient } from '../../../lib/client';

/** clientFromEnv caches its client per module instance: each test loads a fresh copy with its own environment. */
function freshClientFromEnv(env: Record<string, string>): BatchJobClient {
  const saved = { ...process.env };
  Object.assign(process.env, { JOB_QUEUE: 'ec2-queue', JOB_DEFINITION: 'worker', INPUT_BUCKET: 'in', ...env });
  try {
    let client: BatchJobClient | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { clientFromEnv } = require('../../../lambda/submit-api/shared') as typeof import('../../../lambda/submit-api/shared');
      client = clientFromEnv();
    });
    return client!;
  } finally {
    process.env = saved;
  }
}

describe('submit API handlers route by the stack-set JOB_ROUTES', () => {
  test('JOB_ROUTES becomes the client route table', () => {
    const client = freshClientFromEnv({ JOB_ROUTES: '{"FARGATE:ocr":{"jobQueue":"fargate-queue","jobDefinition":"ocr"}}' });
    expect(client.routes?.['FARGATE:ocr']).toEqual({ jobQueue: 'fargate-queue', jobDefinition: 'ocr' });
    expect(client.jobQueue).toBe('ec2-queue');
  });

  test('a malformed JOB_ROUTES fails the cold start naming the variable', () => {
    expect(() => freshClientFromEnv({ JOB_ROUTES: '{"FARGATE:ocr":"fargate-queue"}' })).toThrow(/JOB_ROUTES/);
  });
});
