/** `json-array`: one top-level JSON array of objects (reader: json-array.ts). */
export type RecordFormat = 'jsonl' | 'csv' | 'json-array';
export type Compression = 'none' | 'gzip';
export interface InputFormat {
  format: RecordFormat;
  compression: Compression;
}

/** Values INPUT_FORMAT accepts. */
export const INPUT_FORMATS = ['jsonl', 'csv', 'json-array', 'jsonl.gz', 'csv.gz', 'json-array.gz'] as const;
export type InputFormatName = (typeof INPUT_FORMATS)[number];

const EXTENSIONS: Record<string, RecordFormat> = { jsonl: 'jsonl', ndjson: 'jsonl', json: 'jsonl', csv: 'csv' };

/** The format named by INPUT_FORMAT, else by the key's extension (`.jsonl`, `.ndjson`, `.json`, `.csv`, each optionally `.gz`). */
export function resolveFormat(key: string, explicit?: InputFormatName): InputFormat {
  if (explicit) {
    const gz = explicit.endsWith('.gz');
    return { format: (gz ? explicit.slice(0, -3) : explicit) as RecordFormat, compression: gz ? 'gzip' : 'none' };
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
      `cannot tell the format of s3 key "${key}" from its extension; use .jsonl, .ndjson, .json or .csv (optionally .gz) or set INPUT_FORMAT to one of ${INPUT_FORMATS.join(', ')}`,
    );
  }
  return { format, compression };
}
