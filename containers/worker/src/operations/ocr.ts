import { PutObjectCommand } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { emfOcrLine } from '../ocr/emf';
import type { OcrWord } from '../ocr/engine';
import { installedLanguages, languageDir } from '../ocr/languages';
import { deleteKey, putJson } from '../output';
import { DEFAULT_MAX_PAGE_PIXELS, DEFAULT_MAX_PAGES, ocrConfigSchema } from './declarations';
import { OCR_PLACEMENT, type Placement } from './placement';

export { DEFAULT_MAX_PAGE_PIXELS, DEFAULT_MAX_PAGES };
import type { CustomOperation, CustomRunContext, CustomRunResult } from './types';

/**
 * The `ocr` operation (a whole-object step): one PNG, JPEG or multi-page TIFF in, text out.
 * OUTPUT_S3_KEY gets a JSON document (full text, per-page text and mean confidence, per-word boxes with
 * confidence) and `<key without .json>.txt` the plain text. Pages are decoded and recognized one at a
 * time, so memory holds the input object plus one grey page (at most maxPagePixels bytes) and the
 * engine. Results are written only when every page succeeded; a failed run deletes what an earlier
 * run left at those keys, so nothing stale looks current.
 *
 * OPERATION_CONFIG: `lang` ("eng", or "eng+deu" when that data is installed in OCR_LANG_PATH), `psm`
 * (Tesseract page segmentation mode, default 3 = automatic), `maxPagePixels`, `maxPages`.
 */
/** A4 at 600 dpi is 4961 x 7016 = 34.8 MP; 50 MP leaves room for that and refuses bombs. */

const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * The engine (tesseract.js) and decoder (sharp) load on first use: every other operation runs in the
 * streaming worker image, which does not ship them (the `ocr` image target does).
 */
async function loadOcr() {
  try {
    const [engine, image] = await Promise.all([import('../ocr/engine'), import('../ocr/image')]);
    return { ...engine, ...image };
  } catch (err) {
    throw new Error(`the OCR engine is not in this image (${(err as Error).message}); run ocr jobs on the ocr image target`);
  }
}

const configSchema = ocrConfigSchema;

export type OcrConfig = z.infer<typeof configSchema>;

export { OCR_PLACEMENT };

export interface OcrPage {
  page: number;
  width: number;
  height: number;
  text: string;
  meanConfidence: number;
  words: OcrWord[];
}

export interface OcrDocument {
  operation: 'ocr';
  input: { format: string; bytes: number };
  lang: string;
  pages: number;
  /** Word-weighted mean confidence over all pages, 0-100 (0 when no word was found). */
  meanConfidence: number;
  words: number;
  text: string;
  textKey: string;
  perPage: OcrPage[];
}

export function textKeyFor(outputKey: string): string {
  return outputKey.endsWith('.json') ? `${outputKey.slice(0, -'.json'.length)}.txt` : `${outputKey}.txt`;
}

function parseConfig(raw: unknown): OcrConfig {
  const config = configSchema.parse(raw ?? {});
  const installed = installedLanguages();
  const missing = config.lang.split('+').filter((l) => !installed.includes(l));
  if (missing.length > 0) {
    throw new Error(
      `lang "${config.lang}": no language data for ${missing.join(', ')} in ${languageDir()}; installed: ${installed.join(', ') || 'none'} ` +
        '(add @tesseract.js-data/<lang> files to the OCR image and OCR_LANG_PATH)',
    );
  }
  return config;
}

async function run(ctx: CustomRunContext<OcrConfig>): Promise<CustomRunResult> {
  const { config, input, output, s3Out, log, signal } = ctx;
  const objectName = ctx.inputName ?? 'the input object';
  const textKey = textKeyFor(output.key);
  const t0 = Date.now();
  const { decodePage, ImageInputError, probeImage, recognize } = await loadOcr();
  try {
    const probed = await probeImage(input, config.maxPagePixels, config.maxPages);
    const perPage: OcrPage[] = [];
    for (let i = 0; i < probed.pages; i++) {
      if (signal?.aborted) {
        return { status: 'interrupted', message: `stopped before page ${i + 1} of ${probed.pages}`, records: i, rejected: 0, document: {}, extraKeys: [] };
      }
      const page = await decodePage(input, i, config.maxPagePixels);
      const result = await recognize(page.pgm, config.lang, String(config.psm));
      perPage.push({
        page: i + 1,
        width: page.width,
        height: page.height,
        text: result.text,
        meanConfidence: result.confidence,
        words: result.words,
      });
      log.debug('page recognized', { page: i + 1, words: result.words.length, confidence: result.confidence });
    }
    const allWords = perPage.flatMap((p) => p.words);
    const meanConfidence = allWords.length ? round1(allWords.reduce((s, w) => s + w.confidence, 0) / allWords.length) : 0;
    const text = perPage.map((p) => p.text).join('\f');
    const document: OcrDocument = {
      operation: 'ocr',
      input: { format: probed.format, bytes: input.length },
      lang: config.lang,
      pages: perPage.length,
      meanConfidence,
      words: allWords.length,
      text,
      textKey,
      perPage,
    };
    // Text first, JSON last: a reader that sees the JSON (the completion marker) finds the text too.
    await s3Out.send(
      new PutObjectCommand({ Bucket: output.bucket, Key: textKey, Body: text, ContentType: 'text/plain; charset=utf-8' }),
    );
    await putJson(s3Out, output.bucket, output.key, document);
    process.stdout.write(emfOcrLine({ pages: perPage.length, meanConfidence, durationMs: Date.now() - t0 }) + '\n');
    return {
      status: 'succeeded',
      records: perPage.length,
      rejected: 0,
      document: { ...document, perPage: undefined, text: undefined } as unknown as Record<string, unknown>,
      extraKeys: [textKey],
    };
  } catch (err) {
    await Promise.all([deleteKey(s3Out, output.bucket, output.key), deleteKey(s3Out, output.bucket, textKey)]).catch(() => undefined);
    if (err instanceof ImageInputError) throw new Error(`ocr: ${objectName} ${err.message}`);
    throw new Error(`ocr: ${objectName}: ${(err as Error).message}`);
  }
}

export const ocr: CustomOperation<OcrConfig> & { readonly placement: Placement } = {
  name: 'ocr',
  kind: 'custom',
  placement: OCR_PLACEMENT,
  parseConfig,
  run,
  /** Pages of one document are one run; merging sums counts and weights confidence by words. */
  mergeDocuments(a, b) {
    const wa = Number(a.words ?? 0);
    const wb = Number(b.words ?? 0);
    const conf = wa + wb > 0 ? round1((Number(a.meanConfidence ?? 0) * wa + Number(b.meanConfidence ?? 0) * wb) / (wa + wb)) : 0;
    return { operation: 'ocr', pages: Number(a.pages ?? 0) + Number(b.pages ?? 0), words: wa + wb, meanConfidence: conf };
  },
};
