/**
 * Entry of the road-metrics job (`node /app/road-metrics.js run --date 2023-11-01`, or
 * `npm run road-metrics -- run ...` from the checkout). Subcommands:
 *   run   [--date D | --from F --to T]   aggregate each UTC day from PostgreSQL (default: yesterday)
 *   trend [--days N] [--through D]       merge the last N daily results into per-segment series
 * Environment: OUTPUT_S3_BUCKET, RESULTS_PREFIX, DB_CREDENTIALS_ARN (Secrets Manager secret in the RDS format), DB_TLS (default
 * true), DB_CA_FILE, DB_STATEMENT_TIMEOUT_MS, ROAD_DEFECTS_QUERY (JSON PgQuery), MAX_REJECT_RATIO,
 * DB_WRITE_BACK (default true), JOB_ID / AWS_BATCH_JOB_ID, RUN_AS_OF (ISO time "yesterday" is relative to:
 * the schedule's <aws.scheduler.scheduled-time>, so a late retry still processes the right day).
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readFileSync } from 'fs';
import { Client } from 'pg';
import { parseArgs } from 'util';
import { clientConfig, loadDbSecret, PgQuery } from '../engine/postgres';
import { createLogger } from '../log';
import { outputS3Client } from '../s3';
import { retentionDaysFrom, tagWrites } from '../retention';
import { DEFAULT_DEFECTS_QUERY, DEFAULT_RESULTS_PREFIX, runDays, writeTrend } from './job';
import { resolveDays } from './period';
import { migrate } from './writeback';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new Error(`${name} "${v}" must be true or false`);
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} "${v}" must be a number > 0`);
  return n;
}

function parseQuery(text: string | undefined): PgQuery {
  if (!text) return DEFAULT_DEFECTS_QUERY;
  try {
    return JSON.parse(text) as PgQuery;
  } catch {
    throw new Error('ROAD_DEFECTS_QUERY must be JSON: {table, columns, keyColumn, timeColumn} or {sql, keyField}');
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  const log = createLogger({ job: 'road-metrics' });
  const bucket = required(env, 'OUTPUT_S3_BUCKET');
  const prefix = env.RESULTS_PREFIX || DEFAULT_RESULTS_PREFIX;
  // Daily results, rejects, the dashboard and the latest pointers carry the retention tag (RETENTION_DAYS).
  const s3 = tagWrites(outputS3Client(), { retentionDays: retentionDaysFrom(env) });
  if (command === 'trend') {
    const { values } = parseArgs({ args: rest, options: { days: { type: 'string' }, through: { type: 'string' } } });
    const days = values.days === undefined ? 30 : Number(values.days);
    if (!Number.isInteger(days) || days < 1) throw new Error(`--days "${values.days}" must be an integer >= 1`);
    const { key, trend } = await writeTrend(s3, bucket, { prefix, days, through: values.through });
    log.info('trend written', { key, days: trend.days.length, segments: Object.keys(trend.segments).length });
    return 0;
  }
  if (command !== 'run') throw new Error(`unknown command "${command ?? ''}"; expected run or trend`);
  const { values } = parseArgs({
    args: rest,
    options: { date: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
  });
  let asOf = new Date();
  if (env.RUN_AS_OF) {
    asOf = new Date(env.RUN_AS_OF);
    if (Number.isNaN(asOf.getTime())) throw new Error(`RUN_AS_OF "${env.RUN_AS_OF}" is not an ISO 8601 time`);
  }
  const days = resolveDays(values, asOf);
  const secret = await loadDbSecret(new SecretsManagerClient({}), required(env, 'DB_CREDENTIALS_ARN'));
  const db = new Client(
    clientConfig(secret, {
      tls: bool(env, 'DB_TLS', true),
      caPem: env.DB_CA_FILE ? readFileSync(env.DB_CA_FILE, 'utf8') : undefined,
      statementTimeoutMs: positiveNumber(env, 'DB_STATEMENT_TIMEOUT_MS'),
      applicationName: env.DB_APPLICATION_NAME || 'road-metrics',
    }),
  );
  // A dropped connection surfaces as the failing query's error; this keeps the process alive until then.
  db.on('error', (err) => log.error('database connection error', { error: err.message }));
  await db.connect();
  try {
    const writeBack = bool(env, 'DB_WRITE_BACK', true);
    if (writeBack) await migrate(db);
    const outcomes = await runDays(days, {
      db,
      s3,
      bucket,
      prefix,
      jobId: env.JOB_ID || env.AWS_BATCH_JOB_ID || `local-${Date.now()}`,
      query: parseQuery(env.ROAD_DEFECTS_QUERY),
      maxRejectRatio: positiveNumber(env, 'MAX_REJECT_RATIO'),
      writeBack,
      log,
    });
    const failed = outcomes.find((o) => o.status === 'failed');
    if (failed) {
      process.stderr.write(`road-metrics: ${failed.message}\n`);
      return 1;
    }
    return 0;
  } finally {
    await db.end().catch(() => undefined);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`road-metrics: ${err.message}\n`);
      process.exit(1);
    },
  );
}
