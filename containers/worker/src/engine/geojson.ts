/**
 * GeoJSON inputs for the record scanner, as byte streams the JSON-lines scanner reads unchanged.
 *
 * - A GeoJSON text sequence (`geojsonseq`: one Feature per line, optionally RFC 8142's record separator
 *   0x1E before each) becomes JSON lines by turning each 0x1E into a space: same length, so byte
 *   offsets and chunk ranges stay those of the object (0x1E can never be part of valid JSON text).
 * - A FeatureCollection (`geojson`) is rewritten, streaming, into one feature per line at the feature's
 *   own byte offset: every byte around the features (the collection's other members, brackets, commas,
 *   white space) becomes a line break, so each feature starts a line and the rest are empty lines the
 *   scanner skips; line breaks inside a feature become spaces. Only JSON's lexical structure (strings, escapes, nesting) is tracked; every feature is
 *   still parsed by the scanner's JSON parser, so a malformed one is a reject at its offset. Memory is one
 *   source buffer, whatever the collection's size. The stream state depends on everything before, so a
 *   FeatureCollection is read whole (no byte-range chunks), like a gzip object.
 */
import type { InputFormat } from './format';

const SP = 0x20;
const NL = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const RS = 0x1e;

/** The byte stream the scanner reads for an input format: GeoJSON rewritten as JSON lines, anything else as is. */
export function geojsonSource(format: InputFormat, source: AsyncIterable<Buffer>, name: string): AsyncIterable<Buffer> {
  if (format.geojson === 'sequence') return textSequenceLines(source);
  if (format.geojson === 'collection') return featureCollectionLines(source, name);
  return source;
}

/** Record separators (0x1E) become spaces; buffers without one pass through untouched. */
export async function* textSequenceLines(source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  for await (const buf of source) {
    let i = buf.indexOf(RS);
    if (i === -1) {
      yield buf;
      continue;
    }
    const copy = Buffer.from(buf);
    while (i !== -1) {
      copy[i] = SP;
      i = copy.indexOf(RS, i + 1);
    }
    yield copy;
  }
}

/** Longest top-level member name or `type` value kept while scanning (longer ones are not ours). */
const MAX_CAPTURE = 64;

function isSpace(b: number): boolean {
  return b === SP || b === NL || b === CR || b === TAB;
}

/** The features of a FeatureCollection, one per line at their own byte offsets (see the module comment). */
export async function* featureCollectionLines(source: AsyncIterable<Buffer>, name: string): AsyncIterable<Buffer> {
  let depth = 0;
  let inString = false;
  let escape = false;
  let started = false;
  let closed = false;
  // Top-level members: the name being read, the last name, the `type` value.
  let expectKey = false;
  let capture: number[] | undefined;
  let lastKey: string | undefined;
  let typeValue: string | undefined;
  let featuresFound = false;
  let inFeatures = false;

  const notCollection = (why: string) =>
    new Error(`${name}: not a GeoJSON FeatureCollection: ${why}; give {"type":"FeatureCollection","features":[...]} or use INPUT_FORMAT geojsonseq for one Feature per line`);

  for await (const buf of source) {
    const out = Buffer.allocUnsafe(buf.length);
    let o = 0;
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (inFeatures) {
        // Inside the features array: depth 2 is the array itself, deeper is inside a feature.
        if (inString) {
          out[o++] = b;
          if (escape) escape = false;
          else if (b === BACKSLASH) escape = true;
          else if (b === QUOTE) inString = false;
          continue;
        }
        if (depth === 2) {
          // Between features: white space, the separating commas and the closing bracket.
          if (isSpace(b) || b === COMMA) {
            out[o++] = NL;
            continue;
          }
          if (b === RBRACKET) {
            inFeatures = false;
            depth = 1;
            out[o++] = NL;
            continue;
          }
        }
        if (b === NL || b === CR) out[o++] = SP;
        else {
          out[o++] = b;
          if (b === QUOTE) inString = true;
          else if (b === LBRACE || b === LBRACKET) depth++;
          else if (b === RBRACE || b === RBRACKET) depth--;
        }
        continue;
      }
      // Outside the features: every byte becomes a line break (an empty line); only the structure is followed.
      out[o++] = NL;
      if (inString) {
        if (escape) escape = false;
        else if (b === BACKSLASH) escape = true;
        else if (b === QUOTE) {
          inString = false;
          if (capture !== undefined) {
            const text = capture.length <= MAX_CAPTURE ? Buffer.from(capture).toString('utf8') : undefined;
            if (expectKey) lastKey = text;
            else if (lastKey === 'type') typeValue = text;
            capture = undefined;
          }
        } else if (capture !== undefined && capture.length <= MAX_CAPTURE) capture.push(b);
        continue;
      }
      if (isSpace(b)) continue;
      if (closed) throw notCollection('there are bytes after the top-level object');
      if (!started) {
        if (b !== LBRACE) throw notCollection('the document is not a JSON object');
        started = true;
        depth = 1;
        expectKey = true;
        continue;
      }
      if (b === QUOTE) {
        inString = true;
        if (depth === 1) capture = [];
      } else if (depth === 1 && b === COLON) expectKey = false;
      else if (depth === 1 && b === COMMA) expectKey = true;
      else if (b === LBRACKET && depth === 1 && lastKey === 'features' && !expectKey) {
        if (featuresFound) throw notCollection('more than one "features" member');
        featuresFound = true;
        inFeatures = true;
        depth = 2;
      } else if (b === LBRACE || b === LBRACKET) depth++;
      else if (b === RBRACE || b === RBRACKET) {
        depth--;
        if (depth === 0) closed = true;
      }
    }
    yield out;
  }
  if (!closed || inString) throw new Error(`${name}: the FeatureCollection ends before its closing brace (truncated?)`);
  if (!featuresFound) throw notCollection('it has no "features" array');
  if (typeValue !== 'FeatureCollection') throw notCollection(`its "type" is ${typeValue === undefined ? 'missing' : JSON.stringify(typeValue)}`);
}
