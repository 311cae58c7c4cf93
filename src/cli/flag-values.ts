import type { ParsedOptions } from './commands';
import { UsageError } from './io';

/**
 * A flag's value as the command uses it. parseArgs gives text; a number is checked for its form
 * here, and for its range by the library's own checks, before anything is sent.
 */

type FlagValue = ParsedOptions[string];

export function textFlag(value: FlagValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A repeatable flag: every value, in the order given. */
export function listFlag(value: FlagValue): string[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [String(value)];
}

export function integerFlag(flag: string, value: FlagValue): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} must be a whole number, got ${String(value)}`);
  return n;
}

export function positiveFlag(flag: string, value: FlagValue): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a number above 0, got ${String(value)}`);
  return n;
}
