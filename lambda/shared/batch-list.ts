import { BatchClient, JobSummary, ListJobsCommand } from '@aws-sdk/client-batch';

/** SDK client for Batch; the endpoint comes from AWS_ENDPOINT_URL when set (tests, local servers). */
export function batchClient(overrides: ConstructorParameters<typeof BatchClient>[0] = {}): BatchClient {
  return new BatchClient({ maxAttempts: 5, ...overrides });
}

/** Every job of `queue` in `status`, following nextToken to the end. */
export async function listAllJobs(client: BatchClient, queue: string, status: string): Promise<JobSummary[]> {
  const jobs: JobSummary[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListJobsCommand({ jobQueue: queue, jobStatus: status as never, nextToken, maxResults: 100 }));
    jobs.push(...(page.jobSummaryList ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return jobs;
}

/** Comma separated env var -> trimmed non-empty items. */
export function listFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
