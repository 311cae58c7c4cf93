import { ValidationError } from './errors';

/** What the package logs through: any object with these four methods (console will do). */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const SILENT: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The logger option: silent when not given, refused when it lacks a method it would need later. */
export function checkLogger(logger: unknown): Logger {
  if (logger === undefined) return SILENT;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as Partial<Logger> | null)?.[level] !== 'function') {
      throw new ValidationError('logger', 'type', `must have debug, info, warn and error functions (no ${level})`);
    }
  }
  return logger as Logger;
}
