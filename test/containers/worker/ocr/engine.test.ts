import { closeOcrEngines, loadedCoreFiles, recognize } from '../../../../containers/worker/src/ocr/engine';
import { renderPage, SAMPLE_FONTS } from '../../../../containers/worker/src/ocr/sample-images';

afterAll(() => closeOcrEngines());

describe('OCR engine start (what each job process pays once)', () => {
  test('loads the LSTM-only WebAssembly core, once per engine, and still reads text', async () => {
    const png = await renderPage({ lines: ['Quick brown fox 42'], font: SAMPLE_FONTS[0], size: 28 });
    const first = await recognize(png, 'eng');
    const second = await recognize(png, 'eng');
    expect(first.text.trim()).toBe('Quick brown fox 42');
    expect(second.text).toBe(first.text);
    // tesseract.js 7 alone would load tesseract-core[-simd|-relaxedsimd] (with the legacy engine) here.
    expect(loadedCoreFiles()).toHaveLength(1);
    expect(loadedCoreFiles()[0]).toMatch(/^tesseract-core(-simd|-relaxedsimd)?-lstm$/);
  });
});
