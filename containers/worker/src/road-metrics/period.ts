import type { Period } from '../engine/postgres';

/**
 * The periods of a road-metrics run: `--date D` is one UTC day [D, D+1); `--from F --to T` is every UTC
 * day in [F, T); nothing given means yesterday (the nightly schedule). Each day is its own period: its
 * own result key, its own write-back transaction.
 */
export const MAX_DAYS_PER_RUN = 366;
const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface DayPeriod extends Period {
  /** YYYY-MM-DD */
  readonly date: string;
}

export function parseDay(value: string, option: string): Date {
  const t = DATE.test(value) ? Date.parse(`${value}T00:00:00Z`) : NaN;
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) {
    throw new Error(`${option} "${value}" is not a calendar date; expected YYYY-MM-DD (UTC), e.g. 2023-11-01`);
  }
  return new Date(t);
}

export function dayPeriod(from: Date): DayPeriod {
  return { date: from.toISOString().slice(0, 10), from, to: new Date(from.getTime() + DAY_MS) };
}

export function yesterday(now: Date): string {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return new Date(today - DAY_MS).toISOString().slice(0, 10);
}

export function resolveDays(args: { date?: string; from?: string; to?: string }, now: Date = new Date()): DayPeriod[] {
  if (args.date !== undefined && (args.from !== undefined || args.to !== undefined)) {
    throw new Error('give either --date or --from/--to, not both');
  }
  if ((args.from === undefined) !== (args.to === undefined)) {
    throw new Error('--from and --to go together: the period is [from, to), both YYYY-MM-DD');
  }
  if (args.from !== undefined && args.to !== undefined) {
    const from = parseDay(args.from, '--from');
    const to = parseDay(args.to, '--to');
    const days = (to.getTime() - from.getTime()) / DAY_MS;
    if (days < 1) throw new Error(`--to (${args.to}) must be after --from (${args.from}); the period is [from, to)`);
    if (days > MAX_DAYS_PER_RUN) {
      throw new Error(`--from ${args.from} --to ${args.to} spans ${days} days; at most ${MAX_DAYS_PER_RUN} per run`);
    }
    return Array.from({ length: days }, (_, i) => dayPeriod(new Date(from.getTime() + i * DAY_MS)));
  }
  return [dayPeriod(parseDay(args.date ?? yesterday(now), '--date'))];
}
