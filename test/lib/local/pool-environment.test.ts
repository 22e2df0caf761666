import { poolEnvironment } from '../../../lib/local/run-local';

/** The pool's worker environment: WORKER_LOCAL_INPUT_ROOT comes from the runner and from nothing else. */
const base = { endpoint: 'http://127.0.0.1:1234', region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } };

test('the runner sets WORKER_LOCAL_INPUT_ROOT to its own folder, whatever the environment or workerEnv say', () => {
  const env = poolEnvironment({
    ...base,
    processEnv: { PATH: '/bin', WORKER_LOCAL_INPUT_ROOT: '/etc' },
    workerEnv: { MAX_REJECT_RATIO: '0.5', WORKER_LOCAL_INPUT_ROOT: '/root' },
    localInputRoot: '/state/local-input',
  });
  expect(env.WORKER_LOCAL_INPUT_ROOT).toBe('/state/local-input');
  expect(env.MAX_REJECT_RATIO).toBe('0.5');
  expect(env.PATH).toBe('/bin');
  expect(env.AWS_ENDPOINT_URL_S3).toBe(base.endpoint);
});

test('without a local input folder (an external S3 server) the variable is absent, even when inherited or given', () => {
  const env = poolEnvironment({ ...base, processEnv: { WORKER_LOCAL_INPUT_ROOT: '/etc' }, workerEnv: { WORKER_LOCAL_INPUT_ROOT: '/root' } });
  expect('WORKER_LOCAL_INPUT_ROOT' in env).toBe(false);
});
