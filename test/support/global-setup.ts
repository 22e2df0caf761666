import motoGlobalSetup from './moto-global-setup';
import { startPostgres } from './postgres-global-setup';

/** jest globalSetup: one moto_server and one throwaway PostgreSQL cluster for the whole run. */
export default async function globalSetup(): Promise<void> {
  await motoGlobalSetup();
  await startPostgres();
}
