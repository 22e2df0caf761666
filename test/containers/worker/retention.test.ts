import { CopyObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { quarantineCheckpoint } from '../../../containers/worker/src/checkpoint';
import { PartWriter, putJson } from '../../../containers/worker/src/output';
import { FALLBACK_RETENTION_DAYS, retentionDaysFrom, tagSet, taggingHeader, tagWrites } from '../../../containers/worker/src/retention';
import { objectTags } from '../../support/object-tags';
import { createBucket, motoS3, put, uniqueBucket } from './support/s3';

const BUCKET = uniqueBucket('retention');
let plain: S3Client;
let tagged: S3Client;

beforeAll(async () => {
  plain = motoS3();
  tagged = tagWrites(motoS3(), { retentionDays: 7, jobId: 'job-r' });
  await createBucket(plain, BUCKET);
});
afterAll(() => {
  plain.destroy();
  tagged.destroy();
});

const expected = { 'retention-days': '7', 'job-id': 'job-r' };

test('PutObject through a tagged client carries the retention and job tags', async () => {
  await putJson(tagged, BUCKET, 'a/put.json', { ok: true });
  expect((await objectTags(plain, BUCKET, 'a/'))['a/put.json']).toEqual(expected);
});

test('a multipart output (PartWriter) is tagged at CreateMultipartUpload', async () => {
  const w = new PartWriter(tagged, BUCKET, 'a/multi.bin', { partSize: 5 * 1024 * 1024 });
  w.write(Buffer.alloc(5 * 1024 * 1024, 1));
  await w.flushIfFull();
  w.write('tail');
  await w.complete();
  expect((await objectTags(plain, BUCKET, 'a/multi'))['a/multi.bin']).toEqual(expected);
});

test('lib-storage Upload (single part and multipart) through a tagged client is tagged', async () => {
  await new Upload({ client: tagged, params: { Bucket: BUCKET, Key: 'a/upload-small', Body: 'x' } }).done();
  await new Upload({ client: tagged, params: { Bucket: BUCKET, Key: 'a/upload-big', Body: Buffer.alloc(11 * 1024 * 1024, 2) }, partSize: 5 * 1024 * 1024 }).done();
  const tags = await objectTags(plain, BUCKET, 'a/upload');
  expect(tags).toEqual({ 'a/upload-small': expected, 'a/upload-big': expected });
});

test('a copy (quarantined checkpoint) replaces the source tags with the retention tags', async () => {
  await plain.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'b/cp.json', Body: '{', Tagging: 'other=1' }));
  const aside = await quarantineCheckpoint(tagged, BUCKET, 'b/cp.json');
  expect((await objectTags(plain, BUCKET, 'b/'))[aside]).toEqual(expected);
  await tagged.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'b/copy', CopySource: `${BUCKET}/${aside}` }));
  expect((await objectTags(plain, BUCKET, 'b/copy'))['b/copy']).toEqual(expected);
});

test('a writer that sets its own Tagging keeps it', async () => {
  await tagged.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'c/own', Body: 'x', Tagging: 'retention-days=365' }));
  expect((await objectTags(plain, BUCKET, 'c/'))['c/own']).toEqual({ 'retention-days': '365' });
});

test('an untagged client writes untagged objects (the middleware is what tags)', async () => {
  await put(plain, BUCKET, 'd/plain', 'x');
  expect((await objectTags(plain, BUCKET, 'd/'))['d/plain']).toEqual({});
});

test('RETENTION_DAYS: absent or empty means the fallback, never "keep forever"; bad values name the variable', () => {
  expect(retentionDaysFrom({})).toBe(FALLBACK_RETENTION_DAYS);
  expect(retentionDaysFrom({ RETENTION_DAYS: ' ' })).toBe(FALLBACK_RETENTION_DAYS);
  expect(retentionDaysFrom({ RETENTION_DAYS: '90' })).toBe(90);
  for (const bad of ['0', '-1', '1.5', 'forever', '3651', '07']) {
    expect(() => retentionDaysFrom({ RETENTION_DAYS: bad })).toThrow(`RETENTION_DAYS ("${bad}") is invalid; allowed: a whole number of days from 1 to 3650`);
  }
});

test('the header and tag-set forms say the same', () => {
  expect(taggingHeader({ retentionDays: 30, jobId: 'a b&c' })).toBe('retention-days=30&job-id=a+b%26c');
  expect(tagSet({ retentionDays: 30 })).toEqual([{ Key: 'retention-days', Value: '30' }]);
});
