/** `json-array`: one top-level JSON array of objects (reader: json-array.ts). */
export type RecordFormat = 'jsonl' | 'csv' | 'json-array';
export type Compression = 'none' | 'gzip';
export interface InputFormat {
  format: RecordFormat;
  compression: Compression;
  /** GeoJSON read as JSON lines through engine/geojson: a text sequence, or a FeatureCollection (read whole). */
  geojson?: 'sequence' | 'collection';
}

/** Values INPUT_FORMAT accepts. */
export const INPUT_FORMATS = ['jsonl', 'csv', 'json-array', 'jsonl.gz', 'csv.gz', 'json-array.gz', 'geojsonseq', 'geojsonseq.gz', 'geojson', 'geojson.gz'] as const;
export type InputFormatName = (typeof INPUT_FORMATS)[number];

type FormatName = 'jsonl' | 'csv' | 'json-array' | 'geojsonseq' | 'geojson';
const EXTENSIONS: Record<string, FormatName> = {
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  json: 'jsonl',
  csv: 'csv',
  geojsonl: 'geojsonseq',
  geojsons: 'geojsonseq',
  geojsonseq: 'geojsonseq',
  geojson: 'geojson',
};

function named(format: FormatName, compression: Compression): InputFormat {
  if (format === 'geojsonseq') return { format: 'jsonl', compression, geojson: 'sequence' };
  if (format === 'geojson') return { format: 'jsonl', compression, geojson: 'collection' };
  return { format, compression };
}

/**
 * The format named by INPUT_FORMAT, else by the key's extension (`.jsonl`, `.ndjson`, `.json`, `.csv`,
 * `.geojsonl`/`.geojsons`/`.geojsonseq` for GeoJSON text sequences, `.geojson` for a FeatureCollection;
 * each optionally `.gz`).
 */
export function resolveFormat(key: string, explicit?: InputFormatName): InputFormat {
  if (explicit) {
    const [format, gz] = explicit.split('.');
    return named(format as FormatName, gz ? 'gzip' : 'none');
  }
  const parts = key.toLowerCase().split('/').pop()!.split('.');
  let compression: Compression = 'none';
  if (parts.length > 1 && parts[parts.length - 1] === 'gz') {
    compression = 'gzip';
    parts.pop();
  }
  const format = parts.length > 1 ? EXTENSIONS[parts[parts.length - 1]] : undefined;
  if (!format) {
    throw new Error(
      `cannot tell the format of s3 key "${key}" from its extension; use .jsonl, .ndjson, .json, .csv, .geojsonl or .geojson (optionally .gz) or set INPUT_FORMAT to one of ${INPUT_FORMATS.join(', ')}`,
    );
  }
  return named(format, compression);
}
