import motoGlobalTeardown from './moto-global-teardown';
import { stopPostgres } from './postgres-global-setup';

export default async function globalTeardown(): Promise<void> {
  try {
    await stopPostgres();
  } finally {
    await motoGlobalTeardown();
  }
}
