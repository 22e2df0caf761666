import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';

/** The completion message of a photo bundle, shared by the notifier and the queue handler (re-sent events). */

/** Failures listed in the message itself (SNS allows 256 KiB); the manifest has them all. */
export const MAX_LISTED_FAILURES = 100;
export const COMPLETION_MESSAGE_TYPE = 'photo-bundle.completed';

export interface BundleFailure {
  readonly name: string;
  readonly url: string;
  readonly error: string;
}

export interface BundleCompletion {
  readonly type: typeof COMPLETION_MESSAGE_TYPE;
  readonly status: 'READY' | 'FAILED';
  readonly eventId: string;
  readonly jobId: string;
  readonly batchJobId: string;
  /** The ZIP, when READY. */
  readonly archive: { readonly bucket: string; readonly key: string; readonly bytes: number } | null;
  /** The worker's manifest (entries with sha256, all failures), when it wrote one. */
  readonly manifest: { readonly bucket: string; readonly key: string } | null;
  readonly photos: number;
  readonly succeeded: number;
  readonly failed: number;
  /** At most MAX_LISTED_FAILURES; `failuresTruncated` says when more are in the manifest. */
  readonly failures: BundleFailure[];
  readonly failuresTruncated: boolean;
  readonly reason?: string;
  readonly completedAt: string;
}

/** Where the notifier keeps a job's completion message, in the platform's input bucket. */
export function completionRecordKey(jobId: string): string {
  return `jobs/${jobId}/completion.json`;
}

/** Publishes a completion on the platform topic (also used to answer a re-sent, finished event). */
export async function publishCompletion(completion: BundleCompletion, deps: { readonly sns: SNSClient; readonly topicArn: string }): Promise<void> {
  await deps.sns.send(
    new PublishCommand({
      TopicArn: deps.topicArn,
      Subject: `Photo bundle ${completion.eventId}: ${completion.status}`.slice(0, 100),
      Message: JSON.stringify(completion),
      MessageAttributes: {
        type: { DataType: 'String', StringValue: COMPLETION_MESSAGE_TYPE },
        status: { DataType: 'String', StringValue: completion.status },
        eventId: { DataType: 'String', StringValue: completion.eventId },
      },
    }),
  );
}

