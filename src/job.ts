import type { Layout } from './stages';
import type { JobStatus } from './validation';

export interface Job {
  id: string;
  workspaceId: string;
  type: string;
  /** The parsed JSON payload; the raw text when a legacy record holds text that is not JSON. */
  payload: unknown;
  status: JobStatus;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** How many times a worker claimed the job (requeue does not count). */
  attempts: number;
  /** What a worker recorded when it failed the job (updateStatus's `error`), if anything. */
  error?: string;
  /** What a worker recorded as the job's result (updateStatus's `result`, parsed JSON), if anything. */
  result?: unknown;
  /** The layout this record was read from. */
  source: Layout;
}

/** A job record as the read script returns it: a flat HGETALL and the layout it came from. */
export interface StoredRecord {
  jobId: string;
  source: Layout;
  fields: readonly string[];
}

/** Turns a hash into a Job. `corrupt` is true when the payload is not JSON (only legacy data can be). */
export function decodeJob(record: StoredRecord): { job: Job; corrupt: boolean } {
  const fields: Record<string, string> = {};
  for (let i = 0; i < record.fields.length; i += 2) fields[record.fields[i]] = record.fields[i + 1];
  let corrupt = false;
  // Only legacy data can hold text that is not JSON: it is returned as the text, and counted.
  const json = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      corrupt = true;
      return text;
    }
  };
  const job: Job = {
    id: fields.id ?? record.jobId,
    workspaceId: fields.workspace_id,
    type: fields.type,
    payload: json(fields.payload),
    status: fields.status as JobStatus,
    createdAt: Number(fields.created_at),
    updatedAt: Number(fields.updated_at),
    attempts: Number(fields.attempts ?? 0),
    source: record.source,
  };
  if (fields.error !== undefined) job.error = fields.error;
  if (fields.result !== undefined) job.result = json(fields.result);
  return { job, corrupt };
}
