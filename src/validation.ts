import { ValidationError } from './errors';
import { describe } from './keys';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export function checkStatus(field: string, value: unknown): JobStatus {
  if (typeof value !== 'string' || !(JOB_STATUSES as readonly string[]).includes(value)) {
    throw new ValidationError(field, 'status', `must be one of ${JOB_STATUSES.join(', ')}`);
  }
  return value as JobStatus;
}

export function checkObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(field, 'type', `must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** undefined and null both mean "not given". */
export function optional<T>(value: unknown, check: (value: unknown) => T): T | undefined {
  return value === undefined || value === null ? undefined : check(value);
}

/** A misspelt option (say `expectStatus`) would silently drop a guarantee, so it is refused. */
export function rejectUnknownFields(field: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      throw new ValidationError(`${field}.${name}`, 'unknown-field', `is not a known field (known: ${known.join(', ')})`);
    }
  }
}

export function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, 'range', `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Serialises a payload, refusing anything a JSON round trip would change: the caller must read back
 * exactly what it enqueued. Returns the JSON text, in the caller's key order.
 */
export function serialisePayload(payload: unknown, maxBytes: number, field = 'payload'): string {
  try {
    checkJsonValue(payload, [], new Set());
  } catch (error) {
    if (error instanceof Unserialisable) {
      throw new ValidationError(field, 'json', `${field}${error.path} ${error.reason}: it does not survive JSON`);
    }
    if (error instanceof RangeError) throw new ValidationError(field, 'json', `${field} is nested too deeply`);
    throw error;
  }
  const json = JSON.stringify(payload);
  // A UTF-16 code unit takes at most 3 bytes of UTF-8: most payloads need no exact count.
  if (json.length * 3 <= maxBytes) return json;
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > maxBytes) {
    throw new ValidationError(field, 'max-bytes', `is ${bytes} bytes of JSON, the limit is ${maxBytes}`);
  }
  return json;
}

class Unserialisable {
  readonly path: string;
  constructor(
    path: readonly (string | number)[],
    readonly reason: string,
  ) {
    // Built only on failure: valid payloads pay for no path strings.
    this.path = path.map((step) => (typeof step === 'number' ? `[${step}]` : `.${step}`)).join('');
  }
}

/** `path` is a stack shared by the whole walk: pushed and popped, never copied. */
function checkJsonValue(value: unknown, path: (string | number)[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value) || Object.is(value, -0)) {
        throw new Unserialisable(path, `is ${Object.is(value, -0) ? '-0' : value}`);
      }
      return;
    case 'object':
      if (value === null) return;
      break;
    default:
      throw new Unserialisable(path, `is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`);
  }
  if (ancestors.has(value)) throw new Unserialisable(path, 'refers back to itself (a cycle)');
  ancestors.add(value);
  if (Array.isArray(value)) {
    // JSON keeps an array's elements only: a named property (toJSON included) would be lost.
    if (Object.keys(value).length > value.length || Object.getOwnPropertySymbols(value).length > 0) {
      throw new Unserialisable(path, 'is an array with properties besides its elements');
    }
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      if (!(i in value)) throw new Unserialisable(path, 'is an empty slot');
      checkJsonValue(value[i], path, ancestors);
      path.pop();
    }
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new Unserialisable(path, `is a ${proto?.constructor?.name ?? 'non-plain object'}, not a plain object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) throw new Unserialisable(path, 'has symbol keys');
    for (const key in value) {
      path.push(key);
      checkJsonValue((value as Record<string, unknown>)[key], path, ancestors);
      path.pop();
    }
  }
  ancestors.delete(value);
}

/**
 * JSON with object keys sorted at every depth, so key order never changes a fingerprint. Fingerprints
 * are stored in Redis and compared across versions: this text must never change for any value.
 * Loops and string appends rather than map/join arrays, and strings JSON leaves as they are quoted
 * without calling JSON.stringify: it runs on every enqueue that has an idempotency key.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return jsonString(value);
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${text}]`;
  }
  const keys = Object.keys(value).sort();
  let text = '{';
  for (let i = 0; i < keys.length; i++) {
    text += `${i === 0 ? '' : ','}${jsonString(keys[i])}:${canonicalJson((value as Record<string, unknown>)[keys[i]])}`;
  }
  return `${text}}`;
}

/** Strings JSON.stringify may escape: with '"', '\\', a control character or a surrogate (it escapes lone ones). */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify(text), without the call for the strings it would only put in quotes. */
function jsonString(text: string): string {
  return JSON_ESCAPED.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** A string a caller hands the package to store (a worker's error): at most `maxChars` characters. */
export function checkText(field: string, value: unknown, maxChars: number): string {
  if (typeof value !== 'string') throw new ValidationError(field, 'type', `must be a string, got ${describe(value)}`);
  if (value.length > maxChars) throw new ValidationError(field, 'max-length', `is ${value.length} characters, the limit is ${maxChars}`);
  return value;
}

export const RETENTION_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;
export type RetentionStatus = (typeof RETENTION_STATUSES)[number];
/** A retention of ten years is as good as none: longer is refused as a slip of the unit. */
export const MAX_RETENTION_SECONDS = 10 * 365 * 24 * 3600;

/** The retention option: how long finished jobs stay, by status, in whole seconds. */
export function checkRetention(field: string, value: unknown): Partial<Record<RetentionStatus, number>> {
  const o = checkObject(field, value);
  rejectUnknownFields(field, o, RETENTION_STATUSES);
  const retention: Partial<Record<RetentionStatus, number>> = {};
  for (const status of RETENTION_STATUSES) {
    if (o[status] !== undefined) retention[status] = checkInteger(`${field}.${status}`, o[status], 1, MAX_RETENTION_SECONDS);
  }
  return retention;
}
