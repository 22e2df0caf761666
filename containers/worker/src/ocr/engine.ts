import { createWorker, OEM, PSM, Worker } from 'tesseract.js';
import { languageDir } from './languages';

/**
 * The OCR engine: tesseract.js 7 (Tesseract 5's LSTM compiled to WebAssembly) with language data from
 * npm (@tesseract.js-data/<lang>, the 4.0.0_best_int models). It runs inside the worker's Node process,
 * so the OCR image is the streaming worker plus node_modules, and nothing is downloaded at run time:
 * the language path is a local folder and the cache is off.
 *
 * One engine per language set is created lazily and reused by every page and every run of the
 * process (initialisation costs ~2 s); `closeOcrEngines` terminates them.
 */

export interface OcrWord {
  text: string;
  confidence: number;
  /** Pixel box on the page: left, top, right, bottom. */
  bbox: { x0: number; y0: number; x1: number; y1: number };
}

export interface OcrPageResult {
  text: string;
  /** Tesseract's mean word confidence of the page, 0-100. */
  confidence: number;
  words: OcrWord[];
}

/**
 * Scans rarely carry a usable DPI (PGM pages carry none); Tesseract then guesses from character heights
 * and prints the guess to stderr. 300 is the resolution its models were trained at.
 */
export const DEFAULT_DPI = 300;

const engines = new Map<string, Promise<Worker>>();

function engineFor(lang: string, psm: string, dpi: number): Promise<Worker> {
  const key = `${lang}|${psm}|${dpi}`;
  let engine = engines.get(key);
  if (!engine) {
    engine = (async () => {
      const worker = await createWorker(lang, OEM.LSTM_ONLY, { langPath: languageDir(), cacheMethod: 'none', gzip: true });
      await worker.setParameters({ tessedit_pageseg_mode: psm as PSM, preserve_interword_spaces: '0', user_defined_dpi: String(dpi) });
      return worker;
    })();
    engines.set(key, engine);
    engine.catch(() => engines.delete(key));
  }
  return engine;
}

/** Recognizes one image (any format Leptonica reads; the operation passes grey PGM pages). */
export async function recognize(image: Buffer, lang: string, psm = PSM.AUTO as string, dpi = DEFAULT_DPI): Promise<OcrPageResult> {
  const worker = await engineFor(lang, psm, dpi);
  const { data } = await worker.recognize(image, {}, { text: true, blocks: true });
  const words: OcrWord[] = [];
  for (const block of data.blocks ?? []) {
    for (const para of block.paragraphs) {
      for (const line of para.lines) {
        for (const w of line.words) {
          if (w.text.trim() === '') continue;
          words.push({ text: w.text, confidence: round1(w.confidence), bbox: { ...w.bbox } });
        }
      }
    }
  }
  return { text: data.text, confidence: round1(data.confidence), words };
}

export async function closeOcrEngines(): Promise<void> {
  const all = [...engines.values()];
  engines.clear();
  await Promise.all(all.map(async (e) => (await e.catch(() => undefined))?.terminate()));
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
