import { DescribeJobDefinitionsCommand, paginateListJobs } from '@aws-sdk/client-batch';
import { paginateGetLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { call, ClientContext, getText, isNotFound, retrying } from './context';
import { JobFailedError, OutputNotFoundError, ResultNotReadyError } from './errors';
import { status, toSummary } from './lookup';
import {
  ALL_STATUSES,
  DEFAULT_BATCH_LOG_GROUP,
  JobInfo,
  JobResult,
  JobSummaryInfo,
  ListOptions,
  LogEvent,
  LogsOptions,
  S3Location,
  TERMINAL_STATUSES,
} from './types';

const REJECTS_SAMPLE_SIZE = 5;

/** Downloads and parses the job's output, plus a summary of `<output>.rejects.jsonl`. */
export async function result(ctx: ClientContext, jobId: string): Promise<JobResult> {
  const info = await status(ctx, jobId);
  const location = info.output ?? { bucket: ctx.outputBucket, key: `jobs/${info.jobId}/output/result.json` };
  const text = await getText(ctx, location);
  if (text === undefined) {
    const where = `s3://${location.bucket}/${location.key}`;
    if (info.status === 'FAILED') throw new JobFailedError(info.jobId, info.statusReason, info.exitCode);
    if (info.status === 'SUCCEEDED') throw new OutputNotFoundError(info.jobId, where);
    throw new ResultNotReadyError(info.jobId, info.status, where);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`s3://${location.bucket}/${location.key} is not one JSON document (${text.length} bytes); download it with \`aws s3 cp\``);
  }
  const rejectsLocation = { bucket: location.bucket, key: `${location.key}.rejects.jsonl` };
  return { jobId: info.jobId, location, result: parsed, rejects: { location: rejectsLocation, ...(await summarizeRejects(ctx, rejectsLocation)) } };
}

async function summarizeRejects(ctx: ClientContext, location: S3Location): Promise<{ count: number; sample: unknown[] }> {
  let res;
  try {
    res = await call(ctx, 'GetObject', () => ctx.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
  } catch (err) {
    if (isNotFound(err)) return { count: 0, sample: [] };
    throw err;
  }
  let count = 0;
  let pending = '';
  const sample: unknown[] = [];
  const take = (line: string) => {
    if (!line.trim()) return;
    count++;
    if (sample.length < REJECTS_SAMPLE_SIZE) {
      try {
        sample.push(JSON.parse(line));
      } catch {
        sample.push(line.slice(0, 1024));
      }
    }
  };
  // Streamed: a rejects file can be as large as the input.
  for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
    pending += Buffer.from(chunk).toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(take);
  }
  take(pending);
  return { count, sample };
}

/**
 * The job's log events in order (the SDK's GetLogEvents paginator, which stops when the forward
 * token repeats). With `follow`, keeps polling until the job is terminal, then drains what is left.
 * `limit` caps the total number of events.
 */
export async function* logs(ctx: ClientContext, jobId: string, options: LogsOptions = {}): AsyncGenerator<LogEvent> {
  const pollMs = options.pollMs ?? 2000;
  const limit = options.limit ?? Infinity;
  if (limit <= 0) return;
  let info = await status(ctx, jobId);
  let terminalSeen = TERMINAL_STATUSES.includes(info.status);
  const logGroupName = await logGroupFor(ctx, info);
  const client = retrying(ctx, ctx.logs, 'GetLogEvents');
  let token: string | undefined;
  let yielded = 0;
  for (;;) {
    if (info.logStreamName) {
      const pages = paginateGetLogEvents(
        { client, startingToken: token, stopOnSameToken: true },
        { logGroupName, logStreamName: info.logStreamName, startFromHead: true },
      );
      try {
        for await (const page of pages) {
          for (const e of page.events ?? []) {
            yield { timestamp: e.timestamp, message: e.message ?? '' };
            if (++yielded >= limit) return;
          }
          token = page.nextForwardToken ?? token;
        }
      } catch (err) {
        // The stream appears once the container starts.
        if ((err as Error).name !== 'ResourceNotFoundException') throw err;
      }
    }
    // Caught up with what exists now.
    if (!options.follow || terminalSeen) return;
    await ctx.sleep(pollMs);
    const previousStream = info.logStreamName;
    info = await status(ctx, jobId);
    if (info.logStreamName !== previousStream) token = undefined; // a retry attempt writes a new stream
    terminalSeen = TERMINAL_STATUSES.includes(info.status);
  }
}

async function logGroupFor(ctx: ClientContext, info: JobInfo): Promise<string> {
  if (ctx.logGroupOverride) return ctx.logGroupOverride;
  const def = info.jobDefinition ?? ctx.jobDefinition;
  if (!def) return DEFAULT_BATCH_LOG_GROUP;
  let group = ctx.logGroups.get(def);
  if (!group) {
    group = call(ctx, 'DescribeJobDefinitions', () => ctx.batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [def] }))).then((res) => {
      const log = res.jobDefinitions?.[0]?.containerProperties?.logConfiguration;
      return (log?.logDriver === 'awslogs' && log.options?.['awslogs-group']) || DEFAULT_BATCH_LOG_GROUP;
    });
    ctx.logGroups.set(def, group);
  }
  return group;
}

/** Jobs in the queue, newest first within each status, at most `limit` in total (the SDK's ListJobs paginator). */
export async function list(ctx: ClientContext, options: ListOptions = {}): Promise<JobSummaryInfo[]> {
  const limit = options.limit ?? 100;
  const out: JobSummaryInfo[] = [];
  if (limit <= 0) return out;
  const client = retrying(ctx, ctx.batch, 'ListJobs');
  // ListJobs without a status returns only RUNNING jobs, so "all" means one listing per status.
  for (const jobStatus of options.status ? [options.status] : ALL_STATUSES) {
    for await (const page of paginateListJobs({ client, pageSize: Math.min(100, limit) }, { jobQueue: ctx.jobQueue, jobStatus })) {
      for (const s of page.jobSummaryList ?? []) {
        out.push(toSummary(ctx, s));
        if (out.length >= limit) return out;
      }
    }
  }
  return out;
}
