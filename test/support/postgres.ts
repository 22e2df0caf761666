import { Client } from 'pg';

/** Helpers for the one PostgreSQL cluster started by jest's globalSetup (test/support/postgres-global-setup.ts). */
export function pgTestUrl(): string {
  const url = process.env.PG_TEST_URL;
  if (!url) throw new Error('PG_TEST_URL is not set: the jest globalSetup did not start PostgreSQL');
  return url;
}

export function pgTestPort(): number {
  return Number(new URL(pgTestUrl()).port);
}

/** A fresh database for one suite (suites run in parallel on the shared cluster). */
export async function createTestDatabase(suite: string): Promise<string> {
  const name = `${suite}_${process.pid}_${Math.floor(Math.random() * 1e6)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new Client({ connectionString: pgTestUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return name;
}

export async function dropTestDatabase(name: string): Promise<void> {
  const admin = new Client({ connectionString: pgTestUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export function testDbClient(database: string, applicationName = 'test'): Client {
  const url = new URL(pgTestUrl());
  const client = new Client({ host: url.hostname, port: Number(url.port), user: 'postgres', database, application_name: applicationName });
  // A test that terminates backends (or drops the database) must not crash the suite with an 'error' event.
  client.on('error', () => undefined);
  return client;
}
