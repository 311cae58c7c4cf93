import { randomUUID, hash } from 'node:crypto';
import { DualWriteError } from './errors';
import { checkPattern, ID_PATTERN, IDEMPOTENCY_KEY_PATTERN, JOB_ID_PATTERN, JOB_TYPE_PATTERN, type KeyLayout } from './keys';
import { canonicalJson, checkObject, rejectUnknownFields, serialisePayload } from './validation';

export interface PreparedJob {
  workspaceId: string;
  jobId: string;
  /** The package made the jobId (a random UUID), the caller gave none. */
  generatedJobId: boolean;
  type: string;
  /** The payload's JSON text. */
  payload: string;
  idempotencyKey?: string;
  /** '' without an idempotency key. */
  fingerprint: string;
  idempotencyKeyOrStandIn: string;
  legacyKey: string;
  newKey: string;
  indexKey: string;
}

/** Marks an error as being about job `index` of an enqueueMany batch. */
export function atIndex(error: unknown, index: number): unknown {
  if (error instanceof DualWriteError) error.index = index;
  return error;
}

const JOB_FIELDS = ['workspaceId', 'type', 'payload', 'idempotencyKey', 'jobId'] as const;

/**
 * Validates one job and derives what its script call needs; nothing is sent yet. `at` names the job
 * in a batch ("jobs[3]"). Runs on every enqueue: no closures, and field names built for errors only.
 */
export function prepareJob(keys: KeyLayout, maxPayloadBytes: number, input: unknown, at?: string): PreparedJob {
  const request = checkObject(at ?? 'input', input);
  rejectUnknownFields(at ?? 'input', request, JOB_FIELDS);
  const workspaceId = checkField(at, 'workspaceId', request.workspaceId, ID_PATTERN);
  const type = checkField(at, 'type', request.type, JOB_TYPE_PATTERN);
  // null means not given, as with optional().
  const givenJobId = request.jobId == null ? undefined : checkField(at, 'jobId', request.jobId, JOB_ID_PATTERN);
  const idempotencyKey =
    request.idempotencyKey == null ? undefined : checkField(at, 'idempotencyKey', request.idempotencyKey, IDEMPOTENCY_KEY_PATTERN);
  const payload = serialisePayload(request.payload, maxPayloadBytes, at ? `${at}.payload` : 'payload');
  const jobId = givenJobId ?? randomUUID();
  const indexKey = keys.workspaceIndex(workspaceId);
  return {
    workspaceId,
    jobId,
    generatedJobId: givenJobId === undefined,
    type,
    payload,
    idempotencyKey,
    fingerprint: idempotencyKey ? fingerprint(type, givenJobId, canonicalJson(request.payload)) : '',
    // Without an idempotency key the script never touches that key; the index key stands in so
    // every key of the call still belongs to this workspace (and its cluster slot).
    idempotencyKeyOrStandIn: idempotencyKey ? keys.idempotency(workspaceId, idempotencyKey) : indexKey,
    legacyKey: keys.legacyJob(jobId),
    newKey: keys.newJob(workspaceId, jobId),
    indexKey,
  };
}

/** checkPattern for a field of the job `at` names; its name ("jobs[3].type") is built only to refuse it. */
function checkField(at: string | undefined, field: string, value: unknown, pattern: RegExp): string {
  if (typeof value === 'string' && pattern.test(value)) return value;
  return checkPattern(at ? `${at}.${field}` : field, value, pattern);
}

/** Same key, same request: the request is the type, the caller's jobId, and the canonical payload. */
function fingerprint(type: string, givenJobId: string | undefined, canonicalPayload: string): string {
  return hash('sha256', `${type}\n${givenJobId ?? ''}\n${canonicalPayload}`).slice(0, 32);
}

