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

export function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, 'range', `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Serialises a payload, refusing anything a JSON round trip would change: the caller must read back
 * exactly what it enqueued. Returns the JSON text.
 */
export function serialisePayload(payload: unknown, maxBytes: number): string {
  let problem: string | null;
  try {
    problem = findUnserialisable(payload, 'payload', new Set());
  } catch (error) {
    if (error instanceof RangeError) problem = 'payload is nested too deeply';
    else throw error;
  }
  if (problem) throw new ValidationError('payload', 'json', `${problem}: it does not survive JSON`);
  const json = JSON.stringify(payload);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > maxBytes) {
    throw new ValidationError('payload', 'max-bytes', `is ${bytes} bytes of JSON, the limit is ${maxBytes}`);
  }
  return json;
}

function findUnserialisable(value: unknown, path: string, ancestors: Set<object>): string | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      if (!Number.isFinite(value)) return `${path} is ${value}`;
      return Object.is(value, -0) ? `${path} is -0` : null;
    case 'object':
      break;
    default:
      return `${path} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`;
  }
  if (value === null) return null;
  if (ancestors.has(value)) return `${path} refers back to itself (a cycle)`;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      // JSON keeps an array's elements only: a named property (toJSON included) would be lost.
      if (Object.keys(value).length > value.length || Object.getOwnPropertySymbols(value).length > 0) {
        return `${path} is an array with properties besides its elements`;
      }
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${path}[${i}] is an empty slot`;
        const problem = findUnserialisable(value[i], `${path}[${i}]`, ancestors);
        if (problem) return problem;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      return `${path} is a ${proto?.constructor?.name ?? 'non-plain object'}, not a plain object`;
    }
    if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys`;
    for (const [key, child] of Object.entries(value)) {
      const problem = findUnserialisable(child, `${path}.${key}`, ancestors);
      if (problem) return problem;
    }
    return null;
  } finally {
    ancestors.delete(value);
  }
}

/** JSON with object keys sorted at every depth, so key order never changes a fingerprint. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}
