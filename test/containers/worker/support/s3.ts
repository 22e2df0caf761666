import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { motoClientConfig } from '../../../support/moto';

export function motoS3(): S3Client {
  return new S3Client(motoClientConfig());
}

/** A bucket name unique to this suite and run (suites share one moto_server). */
export function uniqueBucket(suite: string): string {
  return `${suite}-${process.pid}-${Math.floor(Math.random() * 1e6)}`.toLowerCase().slice(0, 63);
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function put(s3: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

export async function getBuffer(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function getJsonObject<T = Record<string, unknown>>(s3: S3Client, bucket: string, key: string): Promise<T> {
  return JSON.parse((await getBuffer(s3, bucket, key)).toString('utf8')) as T;
}

export async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}
