import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** The body of s3://bucket/key as text; undefined when the object does not exist. */
export async function readText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await res.Body!.transformToString();
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** The JSON document at s3://bucket/key (not validated: `T` is the caller's claim); undefined when the object does not exist. */
export async function readJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  const text = await readText(s3, bucket, key);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Writes `doc` as JSON to s3://bucket/key. */
export async function putJson(s3: S3Client, bucket: string, key: string, doc: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(doc), ContentType: 'application/json' }));
}

/** Every key under `prefix`, across all pages of ListObjectsV2. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
