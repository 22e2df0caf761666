import sharp, { Metadata, OutputInfo } from 'sharp';

/**
 * Image input of the OCR operation: format sniffing, header-only size checks and page-by-page decoding.
 * Nothing is decoded before the header says the page is a size we accept, so a decompression bomb
 * (a few KB of PNG claiming 100 megapixels) is refused without allocating its pixels.
 */
export type ImageFormat = 'png' | 'jpeg' | 'tiff';


// libvips' operation cache would keep decoded pages alive between calls; pages are decoded once each.
sharp.cache(false);

export class ImageInputError extends Error {}

export interface PageSize {
  width: number;
  height: number;
}

export interface ProbedImage {
  format: ImageFormat;
  pages: number;
}

/** The format from the first bytes (never from the key's extension, which the uploader chose). */
export function sniffFormat(bytes: Buffer): ImageFormat | 'pdf' | undefined {
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 4) {
    const sig = bytes.subarray(0, 4).toString('latin1');
    if (sig === 'II*\0' || sig === 'MM\0*') return 'tiff';
    if (sig === '%PDF') return 'pdf';
  }
  return undefined;
}

function describeBytes(bytes: Buffer): string {
  if (bytes.length === 0) return 'the object is empty';
  return `first bytes ${bytes.subarray(0, 8).toString('hex')}`;
}

/** PNG's IHDR is the first chunk at a fixed offset; reading it ourselves names 0-sized images exactly. */
function pngHeaderSize(bytes: Buffer): PageSize | undefined {
  if (bytes.length < 24 || bytes.subarray(12, 16).toString('latin1') !== 'IHDR') return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function checkSize(size: PageSize, page: number, maxPagePixels: number): void {
  if (size.width <= 0 || size.height <= 0) {
    throw new ImageInputError(`page ${page} is ${size.width}x${size.height}: an image needs at least 1x1 pixels`);
  }
  const pixels = size.width * size.height;
  if (pixels > maxPagePixels) {
    throw new ImageInputError(
      `page ${page} is ${size.width}x${size.height} (${pixels} pixels), more than maxPagePixels ${maxPagePixels}; ` +
        'scan at a lower resolution or raise maxPagePixels in OPERATION_CONFIG (memory grows with it)',
    );
  }
}

/** Format and page count from the header; throws ImageInputError for anything we will not decode. */
export async function probeImage(bytes: Buffer, maxPagePixels: number, maxPages: number): Promise<ProbedImage> {
  const format = sniffFormat(bytes);
  if (format === 'pdf') {
    throw new ImageInputError('is a PDF; the worker has no PDF renderer (it never downloads one): convert the pages to a multi-page TIFF or PNGs');
  }
  if (!format) throw new ImageInputError(`is not a PNG, JPEG or TIFF image (${describeBytes(bytes)})`);
  if (format === 'png') {
    const size = pngHeaderSize(bytes);
    if (!size) throw new ImageInputError('is a truncated or corrupt PNG: no IHDR header');
    checkSize(size, 1, maxPagePixels);
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageInputError(`is not a readable ${format.toUpperCase()} image: ${(err as Error).message}`);
  }
  const pages = meta.pages ?? 1;
  if (pages > maxPages) throw new ImageInputError(`has ${pages} pages, more than maxPages ${maxPages}`);
  checkSize({ width: meta.width ?? 0, height: meta.height ?? 0 }, 1, maxPagePixels);
  return { format, pages };
}

export interface GreyPage {
  width: number;
  height: number;
  /** A binary PGM (P5) image: the simplest format the engine reads, with no compression to pay for. */
  pgm: Buffer;
}

/**
 * Decodes one page (0-based) to 8-bit grey. Its size is checked from the header first; a truncated or
 * corrupt body fails here (sharp's failOn 'warning') rather than giving half a page of text.
 */
export async function decodePage(bytes: Buffer, page: number, maxPagePixels: number): Promise<GreyPage> {
  let size: PageSize;
  try {
    const meta = await sharp(bytes, { page, limitInputPixels: false }).metadata();
    size = { width: meta.width ?? 0, height: meta.height ?? 0 };
  } catch (err) {
    throw new ImageInputError(`cannot read the header of page ${page + 1}: ${(err as Error).message}`);
  }
  checkSize(size, page + 1, maxPagePixels);
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(bytes, { page, pages: 1, limitInputPixels: maxPagePixels, failOn: 'warning' })
      .rotate() // honour EXIF orientation (phone photos)
      .flatten({ background: '#ffffff' })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageInputError(`cannot decode page ${page + 1} (truncated or corrupt?): ${(err as Error).message}`);
  }
  const { width, height, channels } = raw.info;
  if (channels !== 1) throw new Error(`internal: expected 1 grey channel, got ${channels}`);
  const header = Buffer.from(`P5\n${width} ${height}\n255\n`, 'latin1');
  return { width, height, pgm: Buffer.concat([header, raw.data]) };
}
