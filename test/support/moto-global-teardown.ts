import type { ChildProcess } from 'child_process';

export default async function globalTeardown(): Promise<void> {
  const child = (globalThis as { __MOTO__?: ChildProcess }).__MOTO__;
  if (!child || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
