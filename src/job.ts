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
  let payload: unknown = fields.payload;
  let corrupt = false;
  try {
    payload = JSON.parse(fields.payload);
  } catch {
    corrupt = true;
  }
  return {
    job: {
      id: fields.id ?? record.jobId,
      workspaceId: fields.workspace_id,
      type: fields.type,
      payload,
      status: fields.status as JobStatus,
      createdAt: Number(fields.created_at),
      updatedAt: Number(fields.updated_at),
      source: record.source,
    },
    corrupt,
  };
}
