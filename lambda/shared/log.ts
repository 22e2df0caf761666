/**
 * One JSON object per line on stdout: CloudWatch Logs Insights can filter on every field
 * (`filter action = "terminate"`) without parsing free text.
 */
export type LogSink = (line: string) => void;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A structured logger that writes to `sink` (default: stdout via console.log, which Lambda ships to CloudWatch). */
export function createLogger(base: Record<string, unknown> = {}, sink: LogSink = (line) => console.log(line)): Logger {
  const log = (level: LogLevel, message: string, fields: Record<string, unknown> = {}): void => {
    sink(JSON.stringify({ level, message, time: new Date().toISOString(), ...base, ...fields }));
  };
  return {
    log,
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}

/** Message of an unknown thrown value, for logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
