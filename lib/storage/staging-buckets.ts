import { CfnResource, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { checkCorsOrigins, propError } from '../common/validation';

/** Object tag whose value (whole days) selects the lifecycle rule that expires the object. */
export const RETENTION_TAG = 'retention-days';
/** Object tag naming the Batch job that wrote or reads the object. */
export const JOB_ID_TAG = 'job-id';

/** Name of the environment variable that gives workers and Lambdas the stage's retention (containers/worker/src/retention.ts reads it). */
export const RETENTION_DAYS_ENV = 'RETENTION_DAYS';
/** `retention-days` value of the objects the platform writes when nothing else names one. */
export const DEFAULT_OBJECT_RETENTION_DAYS = 30;

/** Allowed `retention-days` tag values by default; each becomes one lifecycle rule. */
export const DEFAULT_RETENTION_DAYS_VALUES: readonly number[] = [1, 7, 30, 90, 365];
/** Days after which a replaced or deleted object version is removed. */
export const DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS = 7;
/** Days after which an unfinished multipart upload is aborted (its parts are billed until then). */
export const ABORT_INCOMPLETE_MULTIPART_UPLOAD_DAYS = 1;
/** Days server access logs are kept. */
export const DEFAULT_ACCESS_LOG_RETENTION_DAYS = 90;
/** Prefix `grantJobIo` grants read on by default. */
export const DEFAULT_JOB_INPUT_PREFIX = 'jobs/';
/** Prefix `grantJobIo` grants read and write on by default: every job's output folder. */
export const DEFAULT_JOB_OUTPUT_PREFIX = 'jobs/*/output/';

const MAX_RETENTION_DAYS = 3650;
const MAX_RETENTION_VALUES = 20;
/** Prefixes of the staging layout that `defaultRetentionDays` applies to. */
const STAGING_PREFIXES = ['jobs/', 'runs/'];
const AUTO_DELETE_PROVIDER_ID = 'Custom::S3AutoDeleteObjectsCustomResourceProvider';

/** Key of a job's input document: `jobs/{jobId}/inputs.json`. */
export function jobInputsKey(jobId: string): string {
  return `jobs/${checkId('jobId', jobId)}/inputs.json`;
}

/** Prefix under which a job writes its results: `jobs/{jobId}/output/`. */
export function jobOutputPrefix(jobId: string): string {
  return `jobs/${checkId('jobId', jobId)}/output/`;
}

/** Prefix of a chunked run (manifest, chunk results): `runs/{runId}/`. */
export function runPrefix(runId: string): string {
  return `runs/${checkId('runId', runId)}/`;
}

function checkId(name: string, value: string): string {
  if (value.length === 0 || value.includes('/')) {
    throw new Error(`${name} (${JSON.stringify(value)}) must be non-empty and contain no "/"`);
  }
  return value;
}

/**
 * CDK's auto-delete provider (a stack singleton) gives its handler both a GetAtt on its role and a
 * DependsOn the role, which cfn-lint reports as W3005. The extra dependency is harmless; the
 * ignore is set on that one handler so the rest of the template is still linted in full.
 */
function silenceRedundantDependsOnLint(stack: Stack): void {
  const handler = stack.node.tryFindChild(AUTO_DELETE_PROVIDER_ID)?.node.tryFindChild('Handler');
  if (handler instanceof CfnResource) {
    handler.addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
  }
}

export interface StagingBucketsProps {
  /**
   * Encryption of the input and output buckets: `S3_MANAGED` or `KMS` (a customer managed key,
   * created with rotation unless `encryptionKey` is given). The access-logs bucket always uses
   * S3_MANAGED, because S3 server access logging cannot deliver to a KMS-encrypted bucket.
   * @default - s3.BucketEncryption.S3_MANAGED, or KMS when `encryptionKey` is set
   */
  readonly encryption?: s3.BucketEncryption;
  /**
   * KMS key for the input and output buckets (implies `encryption: KMS`).
   * @default - a new key with rotation when `encryption` is KMS
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Allowed values of the `retention-days` object tag: each gets a lifecycle rule that expires
   * current objects carrying it after that many days. Whole numbers 1 to 3650, unique, at most 20.
   * @default [1, 7, 30, 90, 365]
   */
  readonly retentionDaysValues?: number[];
  /**
   * The `retention-days` value the platform's writers (worker, workflow Lambdas and states, webhook)
   * tag their objects with when the job names none: the stage's default retention. Must be one of
   * `retentionDaysValues`, so it always has a lifecycle rule (never "keep forever").
   * @default 30, or the largest `retentionDaysValues` value when 30 is not among them
   */
  readonly objectRetentionDays?: number;
  /**
   * Time after which noncurrent (overwritten or expired) object versions are deleted.
   * @default Duration.days(7)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Expire every object under `jobs/` and `runs/` after this many days. S3 lifecycle filters cannot
   * match "has no tag", so this also caps tagged objects there; it must be >= the largest
   * `retentionDaysValues` value.
   * @default - untagged objects are kept
   */
  readonly defaultRetentionDays?: number;
  /**
   * Days the server access logs are kept.
   * @default 90
   */
  readonly accessLogRetentionDays?: number;
  /**
   * Removal policy of the buckets (and of a key created here).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Empty the buckets when the stack is deleted (adds a custom resource). Only with `removalPolicy: DESTROY`.
   * @default false
   */
  readonly autoDeleteObjects?: boolean;
  /**
   * Use this bucket for inputs instead of creating one (it is left as it is: no lifecycle or logging added).
   * @default - a new input bucket
   */
  readonly existingInputBucket?: s3.IBucket;
  /**
   * Use this bucket for outputs instead of creating one (it is left as it is: no lifecycle or logging added).
   * @default - a new output bucket
   */
  readonly existingOutputBucket?: s3.IBucket;
  /**
   * Browser origins that may PUT to presigned URLs of the created input bucket (e.g. the OCR API's uploads):
   * a CORS rule allowing `PUT` with the `content-type` and `x-amz-tagging` headers the URL is signed for,
   * exposing `ETag`. The signature still fixes the key, type, size and tag; CORS only lets the browser send it.
   * Not with `existingInputBucket` (a brought bucket is left as it is).
   * @default - none: no CORS rule (browsers cannot PUT)
   */
  readonly uploadCorsOrigins?: readonly string[];
}

/** The headers a presigned upload PUT carries that a browser announces in its preflight (content-length is the browser's own). */
export const UPLOAD_CORS_HEADERS = ['content-type', 'x-amz-tagging'] as const;

/** Options of `StagingBuckets.grantJobIo`. Prefixes end with `/` (or are empty for the whole bucket) and may contain `*`. */
export interface JobIoGrantOptions {
  /**
   * Key prefix the grantee may read in the input bucket.
   * @default 'jobs/'
   */
  readonly inputPrefix?: string;
  /**
   * Key prefix the grantee may read, write, tag and delete in the output bucket.
   * @default 'jobs/*\/output/'
   */
  readonly outputPrefix?: string;
}

/**
 * Input and output buckets for Batch jobs, private and SSL-only, encrypted and versioned, with
 * server access logs and lifecycle rules that expire objects by their `retention-days` tag, so
 * job data does not pile up forever.
 */
export class StagingBuckets extends Construct {
  /** Object tag whose value (whole days) selects the expiry rule. */
  public static readonly RETENTION_TAG = RETENTION_TAG;
  /** Object tag naming the job of an object. */
  public static readonly JOB_ID_TAG = JOB_ID_TAG;
  /** `jobs/{jobId}/inputs.json` */
  public static jobInputsKey(jobId: string): string {
    return jobInputsKey(jobId);
  }
  /** `jobs/{jobId}/output/` */
  public static jobOutputPrefix(jobId: string): string {
    return jobOutputPrefix(jobId);
  }
  /** `runs/{runId}/` */
  public static runPrefix(runId: string): string {
    return runPrefix(runId);
  }

  /** Bucket jobs read their inputs from (created or brought). */
  public readonly inputBucket: s3.IBucket;
  /** Bucket jobs write their results to (created or brought). */
  public readonly outputBucket: s3.IBucket;
  /** Target of the server access logs of the created buckets; undefined when both buckets are brought. */
  public readonly accessLogsBucket?: s3.IBucket;
  /** KMS key of the created buckets when `encryption` is KMS. */
  public readonly encryptionKey?: kms.IKey;
  /** The `retention-days` values that have an expiry rule, ascending. */
  public readonly retentionDaysValues: readonly number[];
  /** The stage's default `retention-days` value (`objectRetentionDays`). */
  public readonly objectRetentionDays: number;

  constructor(scope: Construct, id: string, props: StagingBucketsProps = {}) {
    super(scope, id);
    // The access-logs bucket is BUCKET_OWNER_ENFORCED, so ACL-based log delivery (what CDK does
    // when this flag is off in the app) cannot work; a bucket policy for logging.s3 must be used.
    this.node.setContext(cxapi.S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const autoDeleteObjects = props.autoDeleteObjects ?? false;
    this.retentionDaysValues = this.validateRetentionValues(props.retentionDaysValues ?? [...DEFAULT_RETENTION_DAYS_VALUES]);
    // Unset with custom rule values that lack 30: the longest rule, so nothing expires sooner than asked.
    this.objectRetentionDays = props.objectRetentionDays ??
      (this.retentionDaysValues.includes(DEFAULT_OBJECT_RETENTION_DAYS) ? DEFAULT_OBJECT_RETENTION_DAYS : Math.max(...this.retentionDaysValues));
    if (!this.retentionDaysValues.includes(this.objectRetentionDays)) {
      throw propError(this, 'objectRetentionDays', this.objectRetentionDays, `one of retentionDaysValues (${this.retentionDaysValues.join(', ')}), which have lifecycle rules`);
    }
    const noncurrentVersionExpiration =
      props.noncurrentVersionExpiration ?? Duration.days(DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS);
    const accessLogRetentionDays = props.accessLogRetentionDays ?? DEFAULT_ACCESS_LOG_RETENTION_DAYS;
    const encryption = this.validate(props, removalPolicy, autoDeleteObjects, noncurrentVersionExpiration, accessLogRetentionDays);

    const createInput = props.existingInputBucket === undefined;
    const createOutput = props.existingOutputBucket === undefined;
    if (createInput || createOutput) {
      const accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        encryption: s3.BucketEncryption.S3_MANAGED,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycleRules: [
          {
            id: 'expire-access-logs',
            expiration: Duration.days(accessLogRetentionDays),
            abortIncompleteMultipartUploadAfter: Duration.days(ABORT_INCOMPLETE_MULTIPART_UPLOAD_DAYS),
          },
        ],
        removalPolicy,
        autoDeleteObjects,
      });
      Validations.of(accessLogsBucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          'This is the server access logs bucket of the staging buckets; logging its own access into itself would loop, and a second log bucket would only move the finding.',
      });
      this.accessLogsBucket = accessLogsBucket;

      if (encryption === s3.BucketEncryption.KMS) {
        this.encryptionKey =
          props.encryptionKey ??
          new kms.Key(this, 'EncryptionKey', {
            description: 'Encrypts the staging (input and output) buckets of cdk-batch-platform',
            enableKeyRotation: true,
            removalPolicy,
          });
      }
    }

    const uploadCorsOrigins = props.uploadCorsOrigins ?? [];
    checkCorsOrigins(this, 'uploadCorsOrigins', uploadCorsOrigins);
    if (uploadCorsOrigins.length && !createInput) {
      throw propError(this, 'uploadCorsOrigins', uploadCorsOrigins, 'only when the input bucket is created here (a brought bucket is left as it is: add its CORS rule where it is made)', 'cannot be applied');
    }
    const uploadCors: s3.CorsRule[] | undefined = uploadCorsOrigins.length
      ? [{ id: 'browser-upload', allowedMethods: [s3.HttpMethods.PUT], allowedOrigins: [...uploadCorsOrigins], allowedHeaders: [...UPLOAD_CORS_HEADERS], exposedHeaders: ['ETag'], maxAge: 3600 }]
      : undefined;

    const dataBucket = (bucketId: string, logPrefix: string, cors?: s3.CorsRule[]): s3.Bucket =>
      new s3.Bucket(this, bucketId, {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        encryption,
        encryptionKey: this.encryptionKey,
        // Fewer KMS requests (and a smaller KMS bill) for jobs that read and write many objects.
        bucketKeyEnabled: encryption === s3.BucketEncryption.KMS ? true : undefined,
        versioned: true,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        serverAccessLogsBucket: this.accessLogsBucket,
        serverAccessLogsPrefix: logPrefix,
        lifecycleRules: this.lifecycleRules(noncurrentVersionExpiration, props.defaultRetentionDays),
        cors,
        removalPolicy,
        autoDeleteObjects,
      });

    this.inputBucket = props.existingInputBucket ?? dataBucket('InputBucket', 'input/', uploadCors);
    this.outputBucket = props.existingOutputBucket ?? dataBucket('OutputBucket', 'output/');
    if (autoDeleteObjects) silenceRedundantDependsOnLint(Stack.of(this));
  }

  /**
   * `{ RETENTION_DAYS: '<objectRetentionDays>' }`: the environment a worker job definition or Lambda
   * that writes to these buckets needs so its objects carry the stage's retention tag.
   */
  public retentionEnvironment(days: number = this.objectRetentionDays): Record<string, string> {
    if (!this.retentionDaysValues.includes(days)) {
      throw propError(this, 'retentionEnvironment days', days, `one of retentionDaysValues (${this.retentionDaysValues.join(', ')})`);
    }
    return { [RETENTION_DAYS_ENV]: String(days) };
  }

  /**
   * Least-privilege access for a job: read on `inputPrefix` of the input bucket, read and write
   * (put, tag, delete, abort uploads) on `outputPrefix` of the output bucket, plus the KMS
   * permissions when the buckets use a key. Call it again for more prefixes (e.g. `runs/`).
   *
   * The grantee's policy gets cdk-nag AwsSolutions-IAM5 findings for the S3 action groups
   * (`s3:GetObject*`, `s3:GetBucket*`, `s3:List*`, `s3:DeleteObject*`, `s3:Abort*`), the prefix
   * resources (`<bucket.Arn>/<prefix>*`) and, with KMS, `kms:GenerateDataKey*`/`kms:ReEncrypt*`:
   * acknowledge them on the grantee's policy (see docs/constructs.md). Returns the combined grant.
   */
  public grantJobIo(grantee: iam.IGrantable, opts: JobIoGrantOptions = {}): iam.Grant {
    const inputPrefix = this.checkPrefix('inputPrefix', opts.inputPrefix ?? DEFAULT_JOB_INPUT_PREFIX);
    const outputPrefix = this.checkPrefix('outputPrefix', opts.outputPrefix ?? DEFAULT_JOB_OUTPUT_PREFIX);
    return this.inputBucket.grantRead(grantee, `${inputPrefix}*`).combine(this.outputBucket.grantReadWrite(grantee, `${outputPrefix}*`));
  }

  private lifecycleRules(noncurrentVersionExpiration: Duration, defaultRetentionDays: number | undefined): s3.LifecycleRule[] {
    const rules: s3.LifecycleRule[] = this.retentionDaysValues.map((days) => ({
      id: `expire-${RETENTION_TAG}-${days}`,
      tagFilters: { [RETENTION_TAG]: String(days) },
      expiration: Duration.days(days),
    }));
    if (defaultRetentionDays !== undefined) {
      for (const prefix of STAGING_PREFIXES) {
        rules.push({
          id: `expire-${prefix.replace('/', '')}-after-${defaultRetentionDays}`,
          prefix,
          expiration: Duration.days(defaultRetentionDays),
        });
      }
    }
    // Unfiltered: S3 does not allow multipart aborts or delete-marker cleanup with tag filters.
    rules.push({
      id: 'noncurrent-versions-and-uploads',
      noncurrentVersionExpiration,
      abortIncompleteMultipartUploadAfter: Duration.days(ABORT_INCOMPLETE_MULTIPART_UPLOAD_DAYS),
      expiredObjectDeleteMarker: true,
    });
    return rules;
  }

  private validateRetentionValues(values: number[]): number[] {
    const allowed = `unique whole numbers from 1 to ${MAX_RETENTION_DAYS}, at most ${MAX_RETENTION_VALUES} values`;
    if (values.length === 0 || values.length > MAX_RETENTION_VALUES) {
      throw propError(this, 'retentionDaysValues', values, allowed, `has ${values.length} values`);
    }
    for (const v of values) {
      if (Token.isUnresolved(v) || !Number.isInteger(v) || v < 1 || v > MAX_RETENTION_DAYS) {
        throw propError(this, 'retentionDaysValues', values, allowed, `contains ${v}`);
      }
    }
    if (new Set(values).size !== values.length) {
      throw propError(this, 'retentionDaysValues', values, allowed, 'contains duplicates');
    }
    return [...values].sort((a, b) => a - b);
  }

  /** Checks props against each other and returns the encryption of the created buckets. */
  private validate(
    props: StagingBucketsProps,
    removalPolicy: RemovalPolicy,
    autoDeleteObjects: boolean,
    noncurrentVersionExpiration: Duration,
    accessLogRetentionDays: number,
  ): s3.BucketEncryption {
    if (autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
      throw propError(this, 'autoDeleteObjects', autoDeleteObjects, 'true only with removalPolicy DESTROY', `conflicts with removalPolicy ${removalPolicy}`);
    }
    if (!Token.isUnresolved(accessLogRetentionDays) && (!Number.isInteger(accessLogRetentionDays) || accessLogRetentionDays < 1 || accessLogRetentionDays > MAX_RETENTION_DAYS)) {
      throw propError(this, 'accessLogRetentionDays', accessLogRetentionDays, `a whole number from 1 to ${MAX_RETENTION_DAYS}`);
    }
    if (!noncurrentVersionExpiration.isUnresolved()) {
      const days = noncurrentVersionExpiration.toDays({ integral: false });
      if (!Number.isInteger(days) || days < 1 || days > MAX_RETENTION_DAYS) {
        throw propError(this, 'noncurrentVersionExpiration', noncurrentVersionExpiration.toHumanString(), `whole days from 1 to ${MAX_RETENTION_DAYS}`);
      }
    }
    const d = props.defaultRetentionDays;
    if (d !== undefined && !Token.isUnresolved(d)) {
      const longest = Math.max(...this.retentionDaysValues);
      if (!Number.isInteger(d) || d < longest || d > MAX_RETENTION_DAYS) {
        throw propError(
          this,
          'defaultRetentionDays',
          d,
          `a whole number from ${longest} (the largest retentionDaysValues value, which it would otherwise cut short) to ${MAX_RETENTION_DAYS}`,
        );
      }
    }

    const encryption = props.encryption ?? (props.encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED);
    if (encryption !== s3.BucketEncryption.S3_MANAGED && encryption !== s3.BucketEncryption.KMS) {
      throw propError(this, 'encryption', encryption, 'S3_MANAGED or KMS');
    }
    if (props.encryptionKey && encryption !== s3.BucketEncryption.KMS) {
      throw propError(this, 'encryption', encryption, 'KMS (or unset) when encryptionKey is given', 'conflicts with encryptionKey');
    }

    if (props.existingInputBucket && props.existingOutputBucket) {
      const createdOnly: Array<[keyof StagingBucketsProps, unknown]> = [
        ['encryption', props.encryption],
        ['encryptionKey', props.encryptionKey?.node.path],
        ['retentionDaysValues', props.retentionDaysValues],
        ['noncurrentVersionExpiration', props.noncurrentVersionExpiration?.toHumanString()],
        ['defaultRetentionDays', props.defaultRetentionDays],
        ['accessLogRetentionDays', props.accessLogRetentionDays],
        ['autoDeleteObjects', props.autoDeleteObjects],
      ];
      for (const [prop, value] of createdOnly) {
        if (value !== undefined) {
          throw propError(this, prop, value, 'only when at least one bucket is created here', 'has no effect: both buckets are brought');
        }
      }
    }
    return encryption;
  }

  private checkPrefix(prop: string, prefix: string): string {
    if (prefix.startsWith('/') || (prefix !== '' && !prefix.endsWith('/'))) {
      throw propError(this, prop, prefix, 'a key prefix ending with "/" and not starting with "/" (or "" for the whole bucket)');
    }
    return prefix;
  }
}
