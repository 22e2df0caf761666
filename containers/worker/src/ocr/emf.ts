import { METRIC_NAMESPACE } from '../log';

/**
 * One CloudWatch embedded-metric-format line per OCR run: `OcrPages` (summed per minute on the dashboard
 * gives pages per minute) and `OcrMeanConfidence` (averaged). Dimension `Operation=ocr` only, so the
 * metric count stays fixed however many tenants and jobs there are.
 */
export const OCR_PAGES_METRIC = 'OcrPages';
export const OCR_CONFIDENCE_METRIC = 'OcrMeanConfidence';

export function emfOcrLine(figures: { pages: number; meanConfidence: number; durationMs: number }, now = Date.now()): string {
  return JSON.stringify({
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRIC_NAMESPACE,
          Dimensions: [['Operation']],
          Metrics: [
            { Name: OCR_PAGES_METRIC, Unit: 'Count' },
            { Name: OCR_CONFIDENCE_METRIC, Unit: 'None' },
            { Name: 'OcrDurationMs', Unit: 'Milliseconds' },
          ],
        },
      ],
    },
    Operation: 'ocr',
    [OCR_PAGES_METRIC]: figures.pages,
    [OCR_CONFIDENCE_METRIC]: figures.meanConfidence,
    OcrDurationMs: figures.durationMs,
  });
}
