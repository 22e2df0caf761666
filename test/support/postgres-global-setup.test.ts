import { startPostgres } from './postgres-global-setup';

test('a missing PostgreSQL server fails the run with how to install it', async () => {
  const saved = { url: process.env.PG_TEST_URL, bin: process.env.PG_BIN };
  process.env.PG_BIN = '/nonexistent/postgresql/bin';
  delete process.env.PG_TEST_URL;
  try {
    await expect(startPostgres()).rejects.toThrow(
      'PostgreSQL server binaries not found in /nonexistent/postgresql/bin (initdb, pg_ctl): install them with `apt-get install -y postgresql-15`',
    );
  } finally {
    process.env.PG_TEST_URL = saved.url;
    if (saved.bin === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = saved.bin;
  }
});
