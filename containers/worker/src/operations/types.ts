import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../log';

/** Counters every record operation's state carries; the engine maintains them. */
export interface RecordCounts {
  records: number;
  rejected: number;
}

/** Handed to `step`; `emit` writes one output record (operations whose output is 'records'). */
export interface StepContext {
  emit(record: unknown): void;
}

/**
 * A record-at-a-time operation. `step` returns undefined when the record was accepted, or the reason it
 * was rejected (returning beats throwing: rejects are common in bad files and exceptions are slow).
 * `merge` must be associative and commutative: chunk results are combined in any order and grouping.
 * `serialize` gives the JSON document that is both the result of a run and the partial state of a
 * chunk; `deserialize(serialize(s))` must give back an equivalent state.
 */
export interface RecordOperation<State extends RecordCounts = RecordCounts, Config = unknown> {
  readonly name: string;
  readonly kind: 'records';
  /** 'document': one JSON result at OUTPUT_S3_KEY. 'records': JSON lines at OUTPUT_S3_KEY plus a summary. */
  readonly output: 'document' | 'records';
  /**
   * How the engine reads values. 'native' (default): JSON numbers as doubles, numeric CSV fields as
   * numbers. 'exact': JSON numbers as exact values that keep their text (engine/exact-json), CSV fields
   * as strings, and emitted records written with those texts: for operations that pass values through.
   */
  readonly values?: 'native' | 'exact';
  /**
   * Optional fast path over JSON lines in a buffer: from buf[start], takes consecutive lines that each
   * begin before `stop`, end with a newline inside the buffer, are at most maxRecordBytes long (without
   * the line end), have the operation's known shape and would be accepted by `step` for the record
   * JSON.parse gives; adds each to the state exactly as `step` would and counts it in state.records.
   * Returns the position after the newline of the last line taken (`start` when none). The first line
   * it does not take is left untouched (it may only warm caches that are not part of the result) for the
   * engine's general path (decode, UTF-8 check, JSON.parse, `step`), so rejects always come from `step`.
   * Used only for JSON lines with values 'native'.
   */
  readonly scanLines?: (state: State, buf: Buffer, start: number, stop: number, maxRecordBytes: number) => number;
  /** Validates OPERATION_CONFIG (a zod schema per operation); throws an Error naming the field and what is allowed. */
  parseConfig(raw: unknown): Config;
  init(config: Config): State;
  step(state: State, record: Record<string, unknown>, ctx: StepContext): string | undefined;
  merge(a: State, b: State): State;
  serialize(state: State): Record<string, unknown>;
  deserialize(doc: unknown): State;
  /**
   * Optional: the state of a document this operation's own `serialize` made in this process (a scan
   * thread's partial state), without the shape checks `deserialize` makes for documents read from
   * storage. Default: `deserialize`.
   */
  restore?(doc: Record<string, unknown>): State;
}

export interface CustomRunContext<Config> {
  config: Config;
  /** The input object's bytes (a small JSON document for bundle-photos). */
  input: Buffer;
  /** The input object as `s3://bucket/key`, for error messages that name it. */
  inputName?: string;
  s3Out: S3Client;
  output: { bucket: string; key: string };
  log: Logger;
  signal?: AbortSignal;
  maxRejectRatio: number;
}

export interface CustomRunResult {
  status: 'succeeded' | 'failed' | 'interrupted';
  message?: string;
  records: number;
  rejected: number;
  document: Record<string, unknown>;
  /** Objects written besides OUTPUT_S3_KEY. */
  extraKeys: string[];
}

/** An operation that is not a stream of records (bundle-photos: a list of URLs in, a ZIP out). */
export interface CustomOperation<Config = unknown> {
  readonly name: string;
  readonly kind: 'custom';
  parseConfig(raw: unknown): Config;
  run(ctx: CustomRunContext<Config>): Promise<CustomRunResult>;
  /** Merges two result documents (associative and commutative). */
  mergeDocuments(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRecordOperation = RecordOperation<any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Operation = AnyRecordOperation | CustomOperation<any>;
