import path from 'path';
import { setFlagsFromString } from 'v8';
import { createWorker, OEM, PSM, Worker } from 'tesseract.js';
import { languageDir } from './languages';
import { languageData } from './model-cache';

/**
 * The OCR engine: tesseract.js 7 (Tesseract 5's LSTM compiled to WebAssembly) with language data from
 * npm (@tesseract.js-data/<lang>, the 4.0.0_best_int models). It runs inside the worker's Node process,
 * so the OCR image is the streaming worker plus node_modules, and nothing is downloaded at run time:
 * the language path is a local folder and the cache is off.
 *
 * One engine per language set is created lazily and reused by every page and every run of the
 * process; `closeOcrEngines` terminates them. What its start costs, and what was cut from it
 * (docs/benchmarks.md, OCR): the engine thread runs our worker script (below), which loads the
 * LSTM-only WebAssembly core, and the language data is read uncompressed (ocr/model-cache.ts).
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

/** The tesseract.js-core build each engine thread loaded, as it reported it (for tests and the bench). */
const loadedCores: string[] = [];
export function loadedCoreFiles(): readonly string[] {
  return loadedCores;
}
const CORE_MARK = 'loading core file ';

/**
 * The engine thread's script: tesseract.js's own Node worker script (src/worker-script/node/index.js)
 * with one change. tesseract.js 7 hands its Node `getCore` the boolean `lstmOnly` where that function
 * expects an OEM number, so in Node it always loads the core that also carries the legacy engine
 * (3.45 MB of WebAssembly instead of 2.86 MB) although we run LSTM only; starting that bigger core
 * cost ~0.3 s more CPU per process, measured. This script picks the `-lstm` build (with the same
 * SIMD / relaxed-SIMD feature detection) when the engine is LSTM-only and asks tesseract.js's own
 * `getCore` otherwise. Same engine code, same results: only the legacy recognizer is left out.
 * A data: URL (an ES module), so the bundle needs no extra file next to it; `createRequire` resolves
 * tesseract.js and its dependencies from where the main thread found them.
 */
function workerUrl(): URL {
  const tesseractPkg = require.resolve('tesseract.js/package.json');
  const src = `
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
const requireT = createRequire(${JSON.stringify(tesseractPkg)});
const requireCore = createRequire(requireT.resolve('tesseract.js-core/package.json'));
const worker = requireT('./src/worker-script');
const upstreamGetCore = requireT('./src/worker-script/node/getCore');
const { simd, relaxedSimd } = requireT('wasm-feature-detect');
let core = null;
async function getCore(lstmOnly, corePath, res) {
  if (lstmOnly !== true) return upstreamGetCore(lstmOnly, corePath, res);
  if (core === null) {
    const file = (await relaxedSimd()) ? 'tesseract-core-relaxedsimd-lstm' : (await simd()) ? 'tesseract-core-simd-lstm' : 'tesseract-core-lstm';
    res.progress({ status: ${JSON.stringify(CORE_MARK)} + file, progress: 0 });
    core = requireCore('./' + file);
    res.progress({ status: ${JSON.stringify(CORE_MARK)} + file, progress: 1 });
  }
  return core;
}
parentPort.on('message', (packet) => worker.dispatchHandlers(packet, (obj) => parentPort.postMessage(obj)));
worker.setAdapter({ getCore, gunzip: requireT('./src/worker-script/node/gunzip'), fetch: globalThis.fetch, ...requireT('./src/worker-script/node/cache') });
`;
  return new URL(`data:text/javascript,${encodeURIComponent(src)}`);
}

/**
 * V8's WebAssembly tiering budget (default 1,800,000 in Node 20 and 22): how much a function must run
 * in the baseline (Liftoff) code before V8 recompiles it with the optimizing compiler (TurboFan).
 * Node has no compiled-code cache for WebAssembly (nodejs/node#36671), so every process compiles
 * the 2.9 MB core again, and at the default budget hundreds of lukewarm functions are optimized
 * during the first pages: ~1 s of CPU per process for code that then runs a few times. With a budget
 * of 400,000,000 only the really hot functions (the LSTM's inner loops) are optimized, as fast as
 * before; measured on the 15-page set: a fresh process -1.2 s CPU, pages of a warm engine unchanged
 * (docs/benchmarks.md, OCR). Set once, before the first engine compiles its core; process-wide, so it
 * applies to the engine thread, and to every caller of this module alike (job and bench).
 */
export const WASM_TIERING_BUDGET = 400_000_000;
let flagsSet = false;
function setWasmFlags(): void {
  if (flagsSet) return;
  flagsSet = true;
  setFlagsFromString(`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
}

function engineFor(lang: string, psm: string, dpi: number): Promise<Worker> {
  const key = `${lang}|${psm}|${dpi}`;
  let engine = engines.get(key);
  if (!engine) {
    engine = (async () => {
      setWasmFlags();
      const data = languageData(languageDir(), lang.split('+'));
      const worker = await createWorker(lang, OEM.LSTM_ONLY, {
        ...data,
        cacheMethod: 'none',
        // tesseract.js passes workerPath to `new Worker` unchanged; its type says string, a URL works too.
        workerPath: workerUrl() as unknown as string,
        logger: (m: { status?: string; progress?: number }) => {
          if (m.progress === 1 && m.status?.startsWith(CORE_MARK)) loadedCores.push(path.basename(m.status.slice(CORE_MARK.length)));
        },
      });
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
