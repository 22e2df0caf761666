import { GetObjectTaggingCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';

/** Every object under `prefix` of the bucket with its tags (key -> tag name -> value). */
export async function objectTags(s3: S3Client, bucket: string, prefix = ''): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const o of page.Contents ?? []) {
      const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: o.Key! }));
      out[o.Key!] = Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
    }
  }
  return out;
}
