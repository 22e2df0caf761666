import sharp from 'sharp';
import { prng } from '../sample-data';

/**
 * Seeded page images with known text, for the OCR accuracy test, the bench and `npm start`: text
 * rendered by librsvg (through sharp) in the DejaVu fonts, at several sizes, rotated slightly and with
 * salt-and-pepper noise. The same seed gives the same images and the same ground truth.
 */
export const SAMPLE_FONTS = [
  { family: 'DejaVu Sans', weight: 'normal', style: 'normal' },
  { family: 'DejaVu Serif', weight: 'normal', style: 'normal' },
  { family: 'DejaVu Sans Mono', weight: 'normal', style: 'normal' },
  { family: 'DejaVu Sans', weight: 'bold', style: 'normal' },
  { family: 'DejaVu Serif', weight: 'normal', style: 'italic' },
] as const;

export const SAMPLE_SIZES = [20, 28, 36] as const;

const WORDS = (
  'invoice total amount due payment received order number customer account balance quarterly report ' +
  'shipment delivered warehouse inventory batch process record archive signature approved pending ' +
  'street avenue road bridge river mountain station harbour market garden library museum'
).split(' ');

export interface SampleImage {
  name: string;
  png: Buffer;
  /** The text drawn, one line per element. */
  lines: string[];
  font: string;
  size: number;
  rotationDeg: number;
  noise: number;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sampleLines(rand: () => number, count: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const words: string[] = [];
    const n = 4 + Math.floor(rand() * 3);
    for (let w = 0; w < n; w++) words.push(WORDS[Math.floor(rand() * WORDS.length)]);
    // A capital and a number per line: digits and case are what OCR confuses.
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    words.push(String(Math.floor(rand() * 90000) + 10000));
    lines.push(words.join(' '));
  }
  return lines;
}

/** One page: `lines` of text in the given font and size, rotated by rotationDeg, with `noise` share of pixels flipped. */
export async function renderPage(opts: {
  lines: string[];
  font: (typeof SAMPLE_FONTS)[number];
  size: number;
  rotationDeg?: number;
  noise?: number;
  seed?: number;
}): Promise<Buffer> {
  const { lines, font, size } = opts;
  const lineHeight = Math.round(size * 1.6);
  const width = Math.round(size * 0.62 * Math.max(...lines.map((l) => l.length))) + 2 * size;
  const height = lineHeight * lines.length + 2 * size;
  const text = lines
    .map(
      (l, i) =>
        `<text x="${size}" y="${size + lineHeight * (i + 1) - Math.round(size * 0.5)}" font-family="${font.family}" ` +
        `font-weight="${font.weight}" font-style="${font.style}" font-size="${size}" fill="black">${xmlEscape(l)}</text>`,
    )
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`;
  const rotated = await sharp(Buffer.from(svg))
    .rotate(opts.rotationDeg ?? 0, { background: '#ffffff' })
    .flatten({ background: '#ffffff' })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { data, info } = rotated;
  const noise = opts.noise ?? 0;
  if (noise > 0) {
    const rand = prng(opts.seed ?? 1);
    for (let i = 0; i < data.length; i += info.channels) if (rand() < noise) data[i] = rand() < 0.5 ? 0 : 255;
  }
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).png().toBuffer();
}

/** The generated set: every font at every size, 3 lines each, rotation in [-2, 2] degrees, 0-1.5 % noise. */
export async function sampleImages(seed = 13): Promise<SampleImage[]> {
  const rand = prng(seed);
  const out: SampleImage[] = [];
  for (const font of SAMPLE_FONTS) {
    for (const size of SAMPLE_SIZES) {
      const lines = sampleLines(rand, 3);
      const rotationDeg = Math.round((rand() * 4 - 2) * 10) / 10;
      const noise = Math.round(rand() * 15) / 1000;
      const png = await renderPage({ lines, font, size, rotationDeg, noise, seed: Math.floor(rand() * 1e9) });
      const fontName = `${font.family}${font.weight === 'bold' ? ' Bold' : ''}${font.style === 'italic' ? ' Italic' : ''}`;
      out.push({ name: `${fontName.replace(/ /g, '-')}-${size}px`, png, lines, font: fontName, size, rotationDeg, noise });
    }
  }
  return out;
}

/** Levenshtein distance over characters (two rows of memory). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Character error rate: edits to turn the recognized text into the truth, over the truth's length (whitespace runs as one space). */
export function characterErrorRate(recognized: string, truth: string): number {
  const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
  const t = norm(truth);
  return t.length === 0 ? 0 : editDistance(norm(recognized), t) / t.length;
}
