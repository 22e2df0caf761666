import { existsSync, readdirSync } from 'fs';
import path from 'path';

/**
 * Where `<lang>.traineddata.gz` files are: OCR_LANG_PATH (the OCR image sets it), else the folder of
 * the @tesseract.js-data/eng package in the checkout. Only fs and path here, so validating a config
 * never loads the engine.
 */
export function languageDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OCR_LANG_PATH) return env.OCR_LANG_PATH;
  try {
    return path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
  } catch {
    return '(no OCR_LANG_PATH and no @tesseract.js-data/eng package: run the ocr image target)';
  }
}

/** Languages whose data is installed in the language folder. */
export function installedLanguages(dir = languageDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^([A-Za-z_]+)\.traineddata(\.gz)?$/.exec(f)?.[1])
    .filter((l): l is string => !!l)
    .sort();
}
