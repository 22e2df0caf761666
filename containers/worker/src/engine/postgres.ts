import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client, ClientConfig } from 'pg';
import { z } from 'zod';
import { getOperation } from '../operations/registry';
import { bindOperation, DEFAULT_MAX_REJECT_RATIO } from './index';
import { CopyOutReader, CopyTextScanner } from './pg-copy';
import { RAW_PREFIX_BYTES } from './scan';

/**
 * The database source of the engine: rows of a PostgreSQL query for a period [from, to) become records
 * and go through the SAME operation step as lines of an S3 object (`bindOperation`), so validation,
 * counting and results are identical. Rows are streamed with `COPY (SELECT ...) TO STDOUT` and scanned
 * as bytes arrive (engine/pg-copy.ts), so memory stays flat whatever the period holds. A reject carries
 * the row's key instead of a byte offset.
 */

export const DEFAULT_STATEMENT_TIMEOUT_MS = 15 * 60 * 1000;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The JSON of an RDS-managed (or RDS-format) Secrets Manager secret. */
const DbSecretSchema = z.object({
  host: z.string().min(1),
  port: z.coerce.number().int().min(1).max(65535).default(5432),
  username: z.string().min(1),
  password: z.string(),
  dbname: z.string().min(1).default('postgres'),
});
export type DbSecret = z.infer<typeof DbSecretSchema>;

export function parseDbSecret(text: string, secretId: string): DbSecret {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`database secret ${secretId} is not JSON; expected the RDS format {host, port, username, password, dbname}`);
  }
  const parsed = DbSecretSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `database secret ${secretId}: field "${issue.path.join('.')}" ${issue.message}; ` +
        'expected the RDS format {host, port, username, password, dbname}',
    );
  }
  return parsed.data;
}

export async function loadDbSecret(sm: SecretsManagerClient, secretId: string): Promise<DbSecret> {
  const res = await sm.send(new GetSecretValueCommand({ SecretId: secretId }));
  if (res.SecretString === undefined) throw new Error(`database secret ${secretId} has no SecretString`);
  return parseDbSecret(res.SecretString, secretId);
}

export interface DbConnectionOptions {
  /** Require TLS with a verified certificate. @default true (set false only for a local server) */
  readonly tls?: boolean;
  /** PEM bundle of the CA that signed the server certificate (RDS: the region's global bundle). */
  readonly caPem?: string;
  /** @default DEFAULT_STATEMENT_TIMEOUT_MS */
  readonly statementTimeoutMs?: number;
  /** @default 'cdk-batch-platform-worker' */
  readonly applicationName?: string;
}

export function clientConfig(secret: DbSecret, options: DbConnectionOptions = {}): ClientConfig {
  const tls = options.tls ?? true;
  return {
    host: secret.host,
    port: secret.port,
    user: secret.username,
    password: secret.password,
    database: secret.dbname,
    ssl: tls ? { rejectUnauthorized: true, ...(options.caPem ? { ca: options.caPem } : {}) } : false,
    statement_timeout: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    application_name: options.applicationName ?? 'cdk-batch-platform-worker',
    connectionTimeoutMillis: 30_000,
  };
}

/** A half-open UTC period [from, to). */
export interface Period {
  readonly from: Date;
  readonly to: Date;
}

/**
 * What to read. Either a table (or view) with a mapping record field -> column, or SQL with the named
 * parameters `:from` and `:to` (bound values, never spliced into the text: see copyStatement).
 */
export type PgQuery =
  | {
      readonly table: string;
      /** Record field -> column. */
      readonly columns: Readonly<Record<string, string>>;
      /** Column whose value identifies a row in rejects. */
      readonly keyColumn: string;
      /** Timestamp column the period applies to. */
      readonly timeColumn: string;
    }
  | {
      readonly sql: string;
      /** Record field that identifies a row in rejects (it is not handed to the operation). */
      readonly keyField: string;
    };

const KEY_ALIAS = '__row_key';

function ident(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`${what} "${name}" is not a plain SQL identifier (letters, digits, _; at most 63 characters)`);
  }
  return `"${name}"`;
}

/** The statement text and values; identifiers are checked and quoted, values are always bound. */
export function buildQuery(query: PgQuery, period: Period): { text: string; values: unknown[]; keyField: string } {
  if (!(period.from.getTime() < period.to.getTime())) {
    throw new Error(`period [${period.from.toISOString()}, ${period.to.toISOString()}) is empty; from must be before to`);
  }
  const values = [period.from.toISOString(), period.to.toISOString()];
  if ('sql' in query) {
    const named = new Set<string>();
    const text = query.sql.replace(/(?<![:\w]):(\w+)\b/g, (_m, name: string) => {
      if (name !== 'from' && name !== 'to') {
        throw new Error(`SQL parameter :${name} is unknown; allowed named parameters: :from, :to`);
      }
      named.add(name);
      return name === 'from' ? '$1::timestamptz' : '$2::timestamptz';
    });
    if (!named.has('from') || !named.has('to')) {
      throw new Error('SQL must use both :from and :to so that it reads exactly the period [from, to)');
    }
    return { text, values, keyField: query.keyField };
  }
  const table = query.table.split('.').map((part) => ident(part, 'table')).join('.');
  const fields = Object.entries(query.columns);
  if (fields.length === 0) throw new Error('columns must map at least one record field to a column');
  const select = fields.map(([field, column]) => `${ident(column, 'column')} AS ${ident(field, 'record field')}`);
  const time = ident(query.timeColumn, 'timeColumn');
  const text =
    `SELECT ${ident(query.keyColumn, 'keyColumn')} AS ${KEY_ALIAS}, ${select.join(', ')} FROM ${table} ` +
    `WHERE ${time} >= $1::timestamptz AND ${time} < $2::timestamptz`;
  return { text, values, keyField: KEY_ALIAS };
}

/**
 * The period reaches the COPY statement as two transaction-local settings, set with bound parameters
 * (COPY takes no parameters, and the period is never spliced into SQL text).
 */
const PERIOD_SETTINGS = { from: 'cdk_batch.period_from', to: 'cdk_batch.period_to' } as const;

/**
 * The COPY statement of `query` for the period: buildQuery's SELECT with its two parameters read from
 * transaction-local settings (values bound in `SELECT set_config($1, $2, true)`).
 */
export function copyStatement(query: PgQuery, period: Period): { text: string; select: string; settings: [string, string][]; keyField: string } {
  const { text, values, keyField } = buildQuery(query, period);
  // A trailing semicolon ends a statement but not a subquery.
  const select = text
    .replace(/;\s*$/, '')
    // a scalar subquery: evaluated once per statement (an InitPlan), not once per row of a scan
    .replace(/\$1::timestamptz/g, `(SELECT current_setting('${PERIOD_SETTINGS.from}')::timestamptz)`)
    .replace(/\$2::timestamptz/g, `(SELECT current_setting('${PERIOD_SETTINGS.to}')::timestamptz)`);
  return {
    text: `COPY (${select}) TO STDOUT`,
    select,
    settings: [
      [PERIOD_SETTINGS.from, values[0] as string],
      [PERIOD_SETTINGS.to, values[1] as string],
    ],
    keyField,
  };
}

export interface QueryRunOptions {
  operationConfig?: unknown;
  /** One JSON line per rejected row: {key, reason, row}. */
  onReject?: (line: string) => void;
  /** Awaited after every chunk of the COPY stream, so a reject writer can apply backpressure. */
  afterBatch?: () => Promise<void> | undefined;
}

export interface QueryRunResult {
  document: Record<string, unknown>;
  records: number;
  rejected: number;
}

function rejectLine(key: unknown, reason: string, record: Record<string, unknown>): string {
  const row = JSON.stringify(record);
  return JSON.stringify({ key: key ?? null, reason, row: row.length > RAW_PREFIX_BYTES ? row.slice(0, RAW_PREFIX_BYTES) : row }) + '\n';
}

/**
 * Runs a record operation over the rows of `query` for `period`, in a READ ONLY REPEATABLE READ
 * transaction on `client` (one consistent snapshot; the statement timeout of the connection applies).
 * The rows arrive as one `COPY (SELECT ...) TO STDOUT` stream (text format), so the server sends while
 * the worker scans, with no round trip per batch; CopyOutReader walks the protocol messages over whole
 * socket chunks and CopyTextScanner turns each CopyData payload, in place, into the same records pg's
 * query results give, and they go through the SAME operation step as lines of a file. A failing reject
 * writer (`onReject`, `afterBatch`) fails the run after the rest of the COPY is drained.
 * Throws when the connection drops or the query fails: the caller writes nothing in that case.
 */
export async function processQuery(
  operationName: string,
  client: Client,
  query: PgQuery,
  period: Period,
  options: QueryRunOptions = {},
): Promise<QueryRunResult> {
  const op = getOperation(operationName);
  if (op.kind !== 'records') throw new Error(`operation ${operationName} does not process records`);
  const copy = copyStatement(query, period);
  const state = op.init(op.parseConfig(options.operationConfig));
  const onReject = options.onReject ?? (() => undefined);
  const run = bindOperation(op, state, () => undefined, () => undefined);
  let scanner: CopyTextScanner | undefined;
  try {
    await client.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // UTC and ISO dates: the text form of timestamps the scanner (and pg's parsers) read.
    await client.query("SET LOCAL TimeZone = 'UTC'");
    await client.query("SET LOCAL DateStyle = 'ISO, MDY'");
    await client.query('SELECT set_config($1, $2, true), set_config($3, $4, true)', copy.settings.flat());
    // The columns and their types (COPY's text format carries neither).
    const described = await client.query(`SELECT * FROM (${copy.select}) AS q LIMIT 0`);
    scanner = new CopyTextScanner(
      described.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      copy.keyField,
      {
        row: (record) => run.sink.record(record),
        reject(key, reason, record) {
          state.rejected++;
          onReject(rejectLine(key, reason, record));
        },
      },
    );
    const rows = scanner;
    const reader = new CopyOutReader(copy.text, (buf, from, to) => rows.writeRange(buf, from, to), options.afterBatch);
    void client.query(reader);
    await reader.done;
    scanner.end();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(
      `reading ${operationName} input from PostgreSQL failed after ${scanner?.rows ?? 0} rows of ` +
        `[${period.from.toISOString()}, ${period.to.toISOString()}): ${(err as Error).message}`,
    );
  }
  return { document: op.serialize(state), records: state.records, rejected: state.rejected };
}

export { DEFAULT_MAX_REJECT_RATIO };
