/**
 * The OCR engine called directly in a fresh process, for `bench/ocr-bench.ts`: read a local document,
 * decode and recognize every page with the worker's engine (ocr/image.ts `decodePage`, ocr/engine.ts
 * `recognize`), print the texts. No S3, no job contract, no output documents: what a script calling the
 * engine directly pays, engine start included. Bundled by the bench with the worker's esbuild flags.
 */
import { readFileSync } from 'fs';
import { PSM } from 'tesseract.js';
import { closeOcrEngines, recognize } from '../containers/worker/src/ocr/engine';
import { decodePage } from '../containers/worker/src/ocr/image';

async function main(): Promise<void> {
  const file = process.env.OCR_DIRECT_FILE;
  const pages = Number(process.env.OCR_DIRECT_PAGES);
  if (!file || !Number.isInteger(pages) || pages < 1) throw new Error('OCR_DIRECT_FILE and OCR_DIRECT_PAGES (a positive integer) are required');
  const doc = readFileSync(file);
  const texts: string[] = [];
  for (let i = 0; i < pages; i++) {
    const page = await decodePage(doc, i, 50_000_000);
    texts.push((await recognize(page.pgm, 'eng', String(PSM.AUTO))).text);
  }
  process.stdout.write(JSON.stringify({ texts }) + '\n');
  await closeOcrEngines();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
