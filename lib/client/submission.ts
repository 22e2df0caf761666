import { randomUUID } from 'crypto';
import { DescribeJobQueuesCommand, KeyValuePair, SubmitJobCommand, SubmitJobCommandInput } from '@aws-sdk/client-batch';
import { call, ClientContext, isConditionFailure, mapError } from './context';
import { BatchClientError, IdempotencyConflictError, InvalidRequestError, JobIdConflictError } from './errors';
import { acquireLock, jobIdForToken, releaseLock, writeSubmissionRecord } from './idempotency';
import { findByName, findSubmitted } from './lookup';
import { claimJobId, discardStagedInput, recordedRequestHash } from './policy/claim';
import { operationDeclaration } from '../../containers/worker/src/operations/declarations';
import { jobSize, requestHash, validateSubmitRequest } from './policy';
import { admit, release } from './quota';
import { isThrottle, withRetry } from './retry';
import { SubmitRequest, SubmitRequestInput } from './schema';
import { JobTarget, routeOperation } from './routing';
import { retentionError, stageInput, stagingLocations, tagging } from './staging';
import { MAX_SUBMIT_PAYLOAD_BYTES, S3Location, SubmittedJob } from './types';

/** What only the calling code (never the request) may choose. */
export interface SubmitOptions {
  /**
   * Where the worker writes its result (OUTPUT_S3_BUCKET / OUTPUT_S3_KEY) instead of
   * `jobs/{jobId}/output/result.json` in the output bucket. For trusted callers such as a workload's
   * queue handler that derives the key from a validated message; it is part of what an idempotent
   * submit must match. @default - the staging output location
   */
  readonly output?: S3Location;
}

/**
 * Stages the input, then submits the job. With a `clientToken` the call is idempotent: the job id
 * is derived from the token (and tenant), and an earlier job with that id is returned instead of
 * a second one (see idempotency.ts for how concurrent identical submits are serialized).
 */
export async function submit(ctx: ClientContext, request: SubmitRequestInput, options: SubmitOptions = {}): Promise<SubmittedJob> {
  const req = validate(ctx, request);
  const route = routeOperation(req.operation, { jobQueue: ctx.jobQueue, jobDefinition: ctx.jobDefinition }, ctx.routes);
  if (!route.jobDefinition) {
    throw new InvalidRequestError('BatchJobClient: a jobDefinition is required to submit', [{ field: 'jobDefinition', message: 'is required to submit' }]);
  }
  const target: JobTarget = { jobQueue: route.jobQueue ?? ctx.jobQueue, jobDefinition: route.jobDefinition };
  const chosenId = req.jobId !== undefined;
  const jobId = req.jobId ?? (req.clientToken ? jobIdForToken(req.clientToken, req.tenantId) : randomUUID().replace(/-/g, ''));
  const jobName = req.jobName ?? `${ctx.jobNamePrefix}-${jobId}`;
  const staging = stagingLocations(ctx, jobId, req.inputKey);
  const input = staging.input;
  const output = options.output ?? staging.output;
  const params = buildSubmitJob(ctx, target, req, jobId, jobName, input, output);
  await checkFairShare(ctx, target.jobQueue, req);

  const idempotent = req.clientToken !== undefined;
  // With a chosen job id the token is part of what must match: another token on the same id is another submission.
  const outputPart = options.output ? `:${options.output.bucket}/${options.output.key}` : '';
  const hash = (chosenId ? `${requestHash(req)}:${req.clientToken ?? ''}` : requestHash(req)) + outputPart;
  const tags = tagging(jobId, req.retentionDays);
  let lockHeld = false;
  if (idempotent) {
    const existing = (await findSubmitted(ctx, jobId, jobName)) ?? (await acquireLock(ctx, jobId, jobName, tags, hash));
    if (existing) {
      const original = await recordedRequestHash(ctx, jobId);
      if (original !== undefined && original !== hash) {
        throw chosenId ? new JobIdConflictError(jobId, existing.jobId) : new IdempotencyConflictError(jobId, existing.jobId);
      }
      return { jobId, batchJobId: existing.jobId!, jobName, jobArn: existing.jobArn, created: false, input, output };
    }
    lockHeld = true;
  } else if (chosenId) {
    // A chosen id is a conflict when any submission has it: a job by that name, or a claim on it.
    const existing = await findSubmitted(ctx, jobId, jobName);
    if (existing) throw new JobIdConflictError(jobId, existing.jobId);
    if (!(await claimJobId(ctx, jobId, hash, tags))) throw new JobIdConflictError(jobId);
    lockHeld = true;
  }
  let staged = false;
  let outcomeUnknown = false;
  let admitted = false;
  try {
    // After the idempotency check (a repeat of a submitted job takes no slot), before anything is staged.
    if (ctx.quota) {
      await admit(ctx.quota, req.tenantId, jobId);
      admitted = true;
    }
    if (req.input !== undefined) {
      await stageInput(ctx, input, req.input, jobId, req.retentionDays, { ifNoneMatch: chosenId && !idempotent }).catch((err) => {
        throw chosenId && !idempotent && isConditionFailure(err) ? new JobIdConflictError(jobId) : err;
      });
      staged = true;
    }
    const res = await withRetry('SubmitJob', ctx.retryStrategy, () => ctx.batch.send(new SubmitJobCommand(params)), {
      // A SubmitJob that failed on the network may still have created the job; only an idempotent
      // submit can look for it (by name) and so retry safely.
      retryTransient: idempotent,
      beforeRetry: idempotent ? async () => (await findByName(ctx, jobName)) as never : undefined,
    }).catch((err) => {
      // Throttled or refused: Batch has no job. Anything else (network, 5xx): it may have one.
      outcomeUnknown = !(err instanceof BatchClientError) && !isThrottle(err) && !(mapError(err, 'SubmitJob') instanceof InvalidRequestError);
      throw mapError(err, 'SubmitJob');
    });
    const batchJobId = res.jobId!;
    if (idempotent) await writeSubmissionRecord(ctx, jobId, { batchJobId, jobName, submittedAt: new Date().toISOString(), requestHash: hash }, tags);
    return { jobId, batchJobId, jobName, jobArn: res.jobArn, created: true, input, output };
  } catch (err) {
    if (staged) await discardStagedInput(ctx, input, jobId, outcomeUnknown);
    // Batch has no job: give the slot back (when it may have one, the lease stays until its terminal event or expiry).
    if (admitted && !outcomeUnknown) await release(ctx.quota!, req.tenantId, jobId);
    // An idempotent retry looks the job up by name, so its lock can go; a chosen id stays claimed when Batch may have the job.
    if (lockHeld && (idempotent || !outcomeUnknown)) await releaseLock(ctx, jobId);
    throw err;
  }
}

/** The schema's checks plus the client's own retention check, reported together. */
function validate(ctx: ClientContext, request: SubmitRequestInput): SubmitRequest {
  try {
    const req = validateSubmitRequest(request, { sizingLimits: ctx.sizingLimits });
    const retention = retentionError(ctx, req.retentionDays);
    if (retention) throw new InvalidRequestError('invalid submit request', [retention]);
    return req;
  } catch (err) {
    // Report the retention check with the schema's errors, so a caller sees every problem at once.
    const retention = typeof request.retentionDays === 'number' ? retentionError(ctx, request.retentionDays) : undefined;
    if (err instanceof InvalidRequestError && retention && !err.errors.some((e) => e.field === 'retentionDays')) {
      throw new InvalidRequestError('invalid submit request', [...err.errors, retention]);
    }
    throw err;
  }
}

/** The SubmitJob request: the worker's environment contract, job tags, and the size limits checked. */
function buildSubmitJob(ctx: ClientContext, target: JobTarget, req: SubmitRequest, jobId: string, jobName: string, input: S3Location, output: S3Location): SubmitJobCommandInput {
  const env: Record<string, string | undefined> = {
    JOB_ID: jobId,
    OPERATION: req.operation,
    INPUT_S3_BUCKET: input.bucket,
    INPUT_S3_KEY: input.key,
    OUTPUT_S3_BUCKET: output.bucket,
    OUTPUT_S3_KEY: output.key,
    TENANT_ID: req.tenantId,
    USER_ID: req.userId,
    CALLBACK_URL: req.callbackUrl,
    OPERATION_CONFIG: req.operationConfig ? JSON.stringify(req.operationConfig) : undefined,
    // The job's outputs expire with its input: the worker tags what it writes with this.
    RETENTION_DAYS: String(req.retentionDays),
    ...req.environment,
  };
  const environment: KeyValuePair[] = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, value]) => ({ name, value }));
  const tags: Record<string, string> = { 'job-id': jobId };
  if (req.tenantId) tags['tenant-id'] = req.tenantId;
  if (req.userId) tags['user-id'] = req.userId;
  const params: SubmitJobCommandInput = {
    jobName,
    jobQueue: target.jobQueue,
    jobDefinition: target.jobDefinition,
    containerOverrides: { environment, ...resourceOverrides(req) },
    tags,
    shareIdentifier: req.shareIdentifier,
    schedulingPriorityOverride: req.schedulingPriority,
    timeout: req.timeoutSeconds ? { attemptDurationSeconds: req.timeoutSeconds } : undefined,
  };
  const retention = retentionError(ctx, req.retentionDays);
  if (retention) throw new InvalidRequestError('invalid submit request', [retention]);
  if (jobName.length > 128) {
    throw new InvalidRequestError('invalid submit request', [{ field: 'jobName', message: 'the Batch job name would exceed 128 characters', value: jobName }]);
  }
  const overrideBytes = Buffer.byteLength(JSON.stringify(params.containerOverrides));
  if (overrideBytes > ctx.maxOverridesBytes) {
    throw new InvalidRequestError('invalid submit request', [
      {
        field: 'environment',
        message: `container overrides are ${overrideBytes} bytes of JSON; the limit is ${ctx.maxOverridesBytes} (ECS allows 8192 including Batch's own variables): move large values (operationConfig, environment) into the staged input`,
      },
    ]);
  }
  const payloadBytes = Buffer.byteLength(JSON.stringify(params));
  if (payloadBytes > MAX_SUBMIT_PAYLOAD_BYTES) {
    throw new InvalidRequestError('invalid submit request', [
      { field: '(request)', message: `the SubmitJob request is ${payloadBytes} bytes; Batch accepts at most ${MAX_SUBMIT_PAYLOAD_BYTES}` },
    ]);
  }
  return params;
}

/**
 * `vcpus` / `memoryMiB` of the request (already checked by the policy) as resourceRequirements; both
 * are set when either is given (the other from the operation's placement), so a Fargate job always
 * gets a valid pair rather than one half from the request and one from the job definition.
 */
function resourceOverrides(req: SubmitRequest): { resourceRequirements?: { type: 'VCPU' | 'MEMORY'; value: string }[] } {
  if (req.vcpus === undefined && req.memoryMiB === undefined) return {};
  const declaration = operationDeclaration(req.operation);
  if (!declaration) return {};
  const size = jobSize(req, declaration);
  return {
    resourceRequirements: [
      { type: 'VCPU', value: String(size.vcpus) },
      { type: 'MEMORY', value: String(size.memoryMiB) },
    ],
  };
}

/** Batch requires a shareIdentifier on fair-share queues and rejects one elsewhere; refuse before calling it. */
async function checkFairShare(ctx: ClientContext, jobQueue: string, req: SubmitRequest): Promise<void> {
  const own = jobQueue === ctx.jobQueue;
  const lookup = () =>
    call(ctx, 'DescribeJobQueues', () => ctx.batch.send(new DescribeJobQueuesCommand({ jobQueues: [jobQueue] }))).then((res) => {
      const queue = res.jobQueues?.[0];
      if (!queue) throw new InvalidRequestError(`job queue ${jobQueue} does not exist`, [{ field: 'jobQueue', message: 'not found', value: jobQueue }]);
      return Boolean(queue.schedulingPolicyArn);
    });
  let pending: Promise<boolean>;
  if (own) pending = ctx.fairShare ??= lookup();
  else {
    pending = ctx.routedFairShare.get(jobQueue) ?? lookup();
    ctx.routedFairShare.set(jobQueue, pending);
  }
  let fair: boolean;
  try {
    fair = await pending;
  } catch (err) {
    // don't cache a failed lookup
    if (own) ctx.fairShare = undefined;
    else ctx.routedFairShare.delete(jobQueue);
    throw err;
  }
  if (fair && !req.shareIdentifier) {
    throw new InvalidRequestError('invalid submit request', [
      { field: 'shareIdentifier', message: `job queue ${jobQueue} uses fair-share scheduling: a shareIdentifier is required` },
    ]);
  }
  if (!fair && req.shareIdentifier) {
    throw new InvalidRequestError('invalid submit request', [
      { field: 'shareIdentifier', message: `job queue ${jobQueue} has no fair-share scheduling policy: Batch rejects a shareIdentifier`, value: req.shareIdentifier },
    ]);
  }
}
