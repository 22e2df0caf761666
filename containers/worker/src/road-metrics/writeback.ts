import type { Client } from 'pg';
import type { AggregateDefectsResult } from '../operations/aggregate-defects';

/**
 * Write-back of daily aggregates into PostgreSQL. `migrate` creates the tables idempotently (under an
 * advisory lock, so two jobs starting together do not race); `replaceDay` swaps one day's rows in ONE
 * transaction: a rerun replaces the day (segments that vanished included) and never duplicates it.
 */
export const SCHEMA = 'road_metrics';
const MIGRATION_LOCK = 0x726f6164; // "road"

const MIGRATIONS = [
  `CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`,
  `CREATE TABLE IF NOT EXISTS ${SCHEMA}.daily_segment_defects (
     day date NOT NULL,
     segment_id text NOT NULL,
     defects integer NOT NULL,
     low integer NOT NULL,
     medium integer NOT NULL,
     high integer NOT NULL,
     critical integer NOT NULL,
     depth_count integer NOT NULL,
     depth_sum_mm double precision NOT NULL,
     depth_mean_mm double precision,
     depth_max_mm double precision,
     PRIMARY KEY (day, segment_id)
   )`,
  `CREATE TABLE IF NOT EXISTS ${SCHEMA}.daily_runs (
     day date PRIMARY KEY,
     records bigint NOT NULL,
     rejected bigint NOT NULL,
     segments integer NOT NULL,
     job_id text NOT NULL,
     computed_at timestamptz NOT NULL
   )`,
];

export async function migrate(client: Client): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    for (const statement of MIGRATIONS) await client.query(statement);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(`road-metrics migration failed: ${(err as Error).message}`);
  }
}

export async function replaceDay(client: Client, date: string, doc: AggregateDefectsResult, jobId: string): Promise<void> {
  const ids = Object.keys(doc.segments);
  const seg = ids.map((id) => doc.segments[id]);
  await client.query('BEGIN');
  try {
    await client.query(`DELETE FROM ${SCHEMA}.daily_segment_defects WHERE day = $1`, [date]);
    if (ids.length > 0) {
      // One statement for all segments: arrays bound as parameters, unnested server-side.
      await client.query(
        `INSERT INTO ${SCHEMA}.daily_segment_defects
           (day, segment_id, defects, low, medium, high, critical, depth_count, depth_sum_mm, depth_mean_mm, depth_max_mm)
         SELECT $1::date, * FROM unnest($2::text[], $3::int[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[],
                                       $9::float8[], $10::float8[], $11::float8[])`,
        [
          date,
          ids,
          seg.map((s) => s.count),
          seg.map((s) => s.severity.low),
          seg.map((s) => s.severity.medium),
          seg.map((s) => s.severity.high),
          seg.map((s) => s.severity.critical),
          seg.map((s) => s.depthMm.count),
          seg.map((s) => s.depthMm.sum),
          seg.map((s) => s.depthMm.mean),
          seg.map((s) => s.depthMm.max),
        ],
      );
    }
    await client.query(
      `INSERT INTO ${SCHEMA}.daily_runs (day, records, rejected, segments, job_id, computed_at)
       VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (day) DO UPDATE SET records = EXCLUDED.records, rejected = EXCLUDED.rejected,
         segments = EXCLUDED.segments, job_id = EXCLUDED.job_id, computed_at = EXCLUDED.computed_at`,
      [date, doc.records, doc.rejected, ids.length, jobId],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(`writing the road-metrics aggregates of ${date} to PostgreSQL failed: ${(err as Error).message}`);
  }
}
