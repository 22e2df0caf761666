import { S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { crc32 } from 'zlib';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import { closeOcrEngines } from '../../../../containers/worker/src/ocr/engine';
import { characterErrorRate, renderPage, SAMPLE_FONTS, sampleImages } from '../../../../containers/worker/src/ocr/sample-images';
import type { OcrDocument } from '../../../../containers/worker/src/operations/ocr';
import { placementOf } from '../../../../containers/worker/src/operations/placement';
import { getOperation } from '../../../../containers/worker/src/operations/registry';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';
import { runWorkerProcess } from '../support/worker-process';

const IN = uniqueBucket('worker-ocr-in');
const OUT = uniqueBucket('worker-ocr-out');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, IN);
  await createBucket(s3, OUT);
});
afterAll(async () => {
  await closeOcrEngines();
  s3.destroy();
});

const spec = (inputKey: string, outKey: string, config: Record<string, unknown> = {}): ChunkSpec => ({
  jobId: 'ocr',
  operation: 'ocr',
  operationConfig: config,
  input: { bucket: IN, key: inputKey },
  output: { bucket: OUT, key: outKey },
});

const ocrObject = (key: string, outKey: string, config?: Record<string, unknown>) =>
  processChunk(spec(key, outKey, config), { s3In: s3, s3Out: s3 });

/** A PNG made of a signature and one IHDR chunk with these dimensions (valid CRC), nothing else. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const type = Buffer.from('IHDR', 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(13);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([type, ihdr])));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), len, type, ihdr, crc]);
}

describe('ocr operation', () => {
  test('is registered and declares that it runs on Fargate with 2 vCPU and 4 GiB', () => {
    expect(placementOf(getOperation('ocr'))).toEqual({ runsOn: 'FARGATE', vcpus: 2, memoryMiB: 4096, image: 'ocr' });
    expect(placementOf(getOperation('aggregate-defects')).runsOn).toBe('EC2');
  });

  /**
   * 15 pages: 5 DejaVu faces x 20/28/36 px, rotated up to 2 degrees, up to 1.5 % of pixels flipped.
   * Bound 3 %: Tesseract's LSTM models are reported at ~1-2 % CER on clean printed text; rotation and
   * salt-and-pepper noise add a little. Measured here: see the printed figure and docs/workloads/ocr-api.md.
   */
  test('reads the generated set with a character error rate below 3 %', async () => {
    const images = await sampleImages();
    let edits = 0;
    let chars = 0;
    const rows: string[] = [];
    for (const img of images) {
      const key = `set/${img.name}.png`;
      await put(s3, IN, key, img.png);
      const r = await ocrObject(key, `set/${img.name}.json`);
      expect(r.status).toBe('succeeded');
      const doc = await getJsonObject<OcrDocument>(s3, OUT, `set/${img.name}.json`);
      const truth = img.lines.join('\n');
      const cer = characterErrorRate(doc.text, truth);
      const n = truth.replace(/\s+/g, ' ').trim().length;
      edits += cer * n;
      chars += n;
      rows.push(`${img.name.padEnd(28)} rot ${String(img.rotationDeg).padStart(4)}° noise ${(img.noise * 100).toFixed(1)}% conf ${doc.meanConfidence} CER ${(cer * 100).toFixed(2)}%`);
    }
    const total = edits / chars;
    process.stdout.write(`OCR accuracy on ${images.length} generated pages (${chars} chars): CER ${(total * 100).toFixed(2)}%\n${rows.join('\n')}\n`);
    expect(total).toBeLessThan(0.03);
  });

  test('writes full text, per-page text and confidence, word boxes, and a .txt alongside', async () => {
    const png = await renderPage({ lines: ['Invoice total 4711', 'Approved by the warehouse'], font: SAMPLE_FONTS[0], size: 32 });
    await put(s3, IN, 'one/page.png', png);
    const r = await ocrObject('one/page.png', 'one/page.json');
    expect(r).toMatchObject({ status: 'succeeded', records: 1, extraKeys: ['one/page.txt'] });
    const doc = await getJsonObject<OcrDocument>(s3, OUT, 'one/page.json');
    expect(doc).toMatchObject({ operation: 'ocr', lang: 'eng', pages: 1, input: { format: 'png' }, textKey: 'one/page.txt' });
    expect(doc.perPage[0].text).toContain('Invoice total 4711');
    expect(doc.meanConfidence).toBeGreaterThan(80);
    const invoice = doc.perPage[0].words.find((w) => w.text === 'Invoice')!;
    // The word is on the first line, left: its box lies in the top-left part of the page.
    const meta = await sharp(png).metadata();
    expect(invoice.bbox.x0).toBeLessThan(meta.width! / 4);
    expect(invoice.bbox.y1).toBeLessThan(meta.height! / 2);
    expect(invoice.bbox.x1).toBeGreaterThan(invoice.bbox.x0);
    expect(invoice.confidence).toBeGreaterThan(50);
    expect((await getBuffer(s3, OUT, 'one/page.txt')).toString('utf8')).toBe(doc.text);
  });

  test('reads a multi-page TIFF page by page and a JPEG', async () => {
    const font = SAMPLE_FONTS[1];
    const pages = await Promise.all([
      renderPage({ lines: ['First page harbour 1001'], font, size: 32 }),
      renderPage({ lines: ['Second page museum 2002'], font, size: 32 }),
    ]);
    // Same-size pages stacked vertically and saved with pageHeight make a 2-page TIFF.
    const meta = await Promise.all(pages.map((p) => sharp(p).metadata()));
    const width = Math.max(...meta.map((m) => m.width!));
    const height = Math.max(...meta.map((m) => m.height!));
    const grey = await Promise.all(
      pages.map((p, i) =>
        sharp(p).extend({ right: width - meta[i].width!, bottom: height - meta[i].height!, background: '#fff' }).greyscale().raw().toBuffer(),
      ),
    );
    const tiff = await sharp(Buffer.concat(grey), { raw: { width, height: height * 2, channels: 1, pageHeight: height } })
      .tiff({ compression: 'lzw' })
      .toBuffer();
    expect((await sharp(tiff).metadata()).pages).toBe(2);
    await put(s3, IN, 'multi/doc.tiff', tiff);
    const r = await ocrObject('multi/doc.tiff', 'multi/doc.json');
    expect(r.records).toBe(2);
    const doc = await getJsonObject<OcrDocument>(s3, OUT, 'multi/doc.json');
    expect(doc.perPage.map((p) => p.text.trim())).toEqual(['First page harbour 1001', 'Second page museum 2002']);

    await put(s3, IN, 'multi/photo.jpg', await sharp(pages[0]).jpeg({ quality: 85 }).toBuffer());
    await ocrObject('multi/photo.jpg', 'multi/photo.json');
    expect((await getJsonObject<OcrDocument>(s3, OUT, 'multi/photo.json')).text.trim()).toBe('First page harbour 1001');
  });

  describe('bad input is an error naming the object, and leaves no result', () => {
    const cases: [string, () => Promise<Buffer>, RegExp][] = [
      ['not an image', async () => Buffer.from('name,value\na,1\n'), /is not a PNG, JPEG or TIFF image \(first bytes 6e616d65/],
      ['an empty object', async () => Buffer.alloc(0), /is not a PNG, JPEG or TIFF image \(the object is empty\)/],
      ['a PDF', async () => Buffer.from('%PDF-1.7\n'), /is a PDF; the worker has no PDF renderer/],
      [
        'a truncated PNG',
        async () => {
          const png = await renderPage({ lines: ['Truncated text here'], font: SAMPLE_FONTS[0], size: 28, noise: 0.2 });
          return png.subarray(0, Math.floor(png.length / 2));
        },
        /cannot decode page 1 \(truncated or corrupt\?\)/,
      ],
      ['a 0x0 PNG', async () => pngHeaderOnly(0, 0), /page 1 is 0x0: an image needs at least 1x1 pixels/],
      ['a 100-megapixel PNG bomb', async () => pngHeaderOnly(10_000, 10_000), /page 1 is 10000x10000 \(100000000 pixels\), more than maxPagePixels 50000000/],
      [
        'a 100-megapixel TIFF bomb',
        async () => sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#fff' } }).tiff({ compression: 'deflate' }).toBuffer(),
        /page 1 is 10000x10000 \(100000000 pixels\), more than maxPagePixels/,
      ],
    ];
    test.each(cases)('%s', async (label, make, message) => {
      const key = `bad/${label.replace(/\W+/g, '-')}`;
      await put(s3, IN, key, await make());
      // A result of an earlier run at the same keys must not survive as if it were this run's.
      await put(s3, OUT, `${key}.json`, '{"stale":true}');
      await put(s3, OUT, `${key}.txt`, 'stale');
      await expect(ocrObject(key, `${key}.json`)).rejects.toThrow(`ocr: s3://${IN}/${key} `);
      await expect(ocrObject(key, `${key}.json`)).rejects.toThrow(message);
      expect(await exists(s3, OUT, `${key}.json`)).toBe(false);
      expect(await exists(s3, OUT, `${key}.txt`)).toBe(false);
    });
  });

  test('rejects a language whose data is not installed, naming it and the installed ones', () => {
    expect(() => getOperation('ocr').parseConfig({ lang: 'eng+deu' })).toThrow(/lang "eng\+deu": no language data for deu .*installed: eng/);
    expect(() => getOperation('ocr').parseConfig({ psm: 99 })).toThrow();
  });
});

test('the worker entrypoint runs ocr against moto S3 and emits page and confidence metrics', async () => {
  const png = await renderPage({ lines: ['Quarterly report 2026', 'Library station road'], font: SAMPLE_FONTS[3], size: 30 });
  await put(s3, IN, 'proc/scan.png', png);
  const run = await runWorkerProcess({
    JOB_ID: 'ocr-proc',
    OPERATION: 'ocr',
    INPUT_S3_BUCKET: IN,
    INPUT_S3_KEY: 'proc/scan.png',
    OUTPUT_S3_BUCKET: OUT,
    OUTPUT_S3_KEY: 'proc/scan.json',
  });
  expect(run.stderr).not.toMatch(/worker:|Error/);
  expect(run.code).toBe(0);
  expect((await getBuffer(s3, OUT, 'proc/scan.txt')).toString('utf8').trim()).toBe('Quarterly report 2026\nLibrary station road');
  const emf = run.logs.find((l) => 'OcrPages' in l)!;
  expect(emf).toMatchObject({ Operation: 'ocr', OcrPages: 1 });
  expect(emf.OcrMeanConfidence).toBeGreaterThan(80);
});
