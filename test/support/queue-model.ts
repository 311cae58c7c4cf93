import { planFor, type JobStatus, type Stage } from '../../src';

/**
 * What the queue should answer and hold, kept in memory, for random operation sequences: each
 * call's answer is predicted before it is made, and Redis is compared with the model at the end.
 * It follows the stage table and the scripts' contracts (lua/*.lua headers), not their code.
 */
export type Predicted =
  | { ok: true; value: unknown }
  | { ok: false; code: string };

interface LegacyRecord {
  workspaceId: string;
  status: JobStatus;
}

export class QueueModel {
  stage: Stage;
  /** job:<jobId>, global: the workspace its record names. */
  readonly legacy = new Map<string, LegacyRecord>();
  /** ws:<workspaceId>:job:<jobId>, by "<workspaceId>/<jobId>". */
  readonly new = new Map<string, { status: JobStatus }>();
  /** Whether a job's two records hold the same fields: true after a write that reached both. */
  readonly inSync = new Map<string, boolean>();
  /** Jobs whose legacy record is older than their new one. */
  readonly legacyBehind = new Set<string>();
  /** Jobs whose new record is older than their legacy one: updated in off, which does not write it. */
  readonly newBehind = new Set<string>();
  readonly idempotency = new Map<string, { fingerprint: string; jobId: string }>();
  readonly queue: string[] = [];
  readonly index = new Map<string, Set<string>>();

  constructor(stage: Stage) {
    this.stage = stage;
  }

  /** The outcome enqueue must have; `created` applies it, with the jobId Redis chose when none was given. */
  enqueue(workspaceId: string, givenJobId: string | undefined, key: string | undefined, payload: number) {
    const plan = planFor(this.stage);
    const fingerprint = `${givenJobId ?? ''}|${payload}`;
    const remembered = key ? this.idempotency.get(`${workspaceId}/${key}`) : undefined;
    if (remembered) {
      return remembered.fingerprint === fingerprint
        ? predicted({ jobId: remembered.jobId, created: false })
        : refused('IDEMPOTENCY_CONFLICT');
    }
    // The legacy key is global: a jobId it holds is refused in every stage, complete included.
    if (givenJobId && this.legacy.has(givenJobId)) return refused('DUPLICATE_JOB');
    if (givenJobId && plan.writeNew && this.new.has(`${workspaceId}/${givenJobId}`)) return refused('DUPLICATE_JOB');
    return {
      ok: true as const,
      value: undefined,
      created: (jobId: string) => {
        const id = `${workspaceId}/${jobId}`;
        if (plan.writeLegacy) this.legacy.set(jobId, { workspaceId, status: 'queued' });
        if (plan.writeNew) this.new.set(id, { status: 'queued' });
        this.inSync.set(id, plan.writeLegacy && plan.writeNew);
        this.queue.push(plan.writeLegacy ? jobId : `${workspaceId}:${jobId}`);
        this.indexOf(workspaceId).add(jobId);
        if (key) this.idempotency.set(`${workspaceId}/${key}`, { fingerprint, jobId });
      },
    };
  }

  /** Predicts updateStatus and applies it when it succeeds. */
  updateStatus(workspaceId: string, jobId: string, status: JobStatus, expectedStatus?: JobStatus): Predicted {
    const plan = planFor(this.stage);
    const id = `${workspaceId}/${jobId}`;
    const newRecord = plan.writeNew ? this.new.get(id) : undefined;
    // complete writes no legacy record, but a twin of ours follows the job while its new record exists.
    const twinFollows = plan.writeNew && !plan.writeLegacy;
    const twin = twinFollows && newRecord && this.legacy.get(jobId)?.workspaceId === workspaceId ? this.legacy.get(jobId) : undefined;
    const legacy = plan.writeLegacy ? this.legacy.get(jobId) : twin;
    const legacyState = !legacy ? 'absent' : legacy.workspaceId === workspaceId ? 'ours' : 'foreign';
    let source: { status: JobStatus } | undefined;
    let repaired: 'none' | 'new' | 'legacy' = 'none';
    if (plan.writeLegacy && plan.writeNew) {
      if (legacyState === 'ours' && newRecord) source = plan.readFrom === 'legacy' ? legacy : newRecord;
      else if (legacyState === 'ours') [source, repaired] = [legacy, 'new'];
      // A legacy key of another workspace is never written: the job lives in the new layout only.
      else if (newRecord) [source, repaired] = [newRecord, legacyState === 'foreign' ? 'none' : 'legacy'];
    } else if (plan.writeLegacy) {
      if (legacyState === 'ours') source = legacy;
    } else {
      source = newRecord;
    }
    if (!source) return refused('NOT_FOUND');
    const previousStatus = source.status;
    if (expectedStatus && previousStatus !== expectedStatus) return refused('STATUS_CONFLICT');
    // 'queued' puts no entry on the queue: every copy the update writes must be queued already (a
    // copy a stay in off or complete left behind may say so after the job left the queue).
    const written = [source, legacyState === 'ours' ? legacy : undefined, newRecord];
    if (status === 'queued' && written.some((copy) => copy && copy.status !== 'queued')) return refused('STATUS_CONFLICT');

    // Leaving 'queued', the job leaves the queue: its named entry, else its bare one while job:<id> is its own.
    if (previousStatus === 'queued' && status !== 'queued') {
      const forms = [`${workspaceId}:${jobId}`, ...(this.legacy.get(jobId)?.workspaceId === workspaceId ? [jobId] : [])];
      const at = forms.map((form) => this.queue.indexOf(form)).find((index) => index >= 0);
      if (at !== undefined) this.queue.splice(at, 1);
    }
    const legacyWritten = (plan.writeLegacy && legacyState !== 'foreign') || twin !== undefined;
    if (repaired === 'new') this.indexOf(workspaceId).add(jobId);
    if (legacyWritten) this.legacy.set(jobId, { workspaceId, status });
    if (plan.writeNew) this.new.set(id, { status });
    // A write to one layout of a job that has both leaves them apart; a write to both joins them.
    this.inSync.set(id, legacyWritten && plan.writeNew);
    if (!legacyWritten && this.legacy.get(jobId)?.workspaceId === workspaceId) this.legacyBehind.add(id);
    if (legacyWritten) this.legacyBehind.delete(id);
    if (!plan.writeNew && this.new.has(id)) this.newBehind.add(id);
    if (plan.writeNew) this.newBehind.delete(id);
    return predicted({ jobId, previousStatus, status, repaired, expiresAt: null });
  }

  /** The record getJob returns in this stage: its status and layout, or null. */
  read(workspaceId: string, jobId: string): { status: JobStatus; source: 'legacy' | 'new' } | null {
    const plan = planFor(this.stage);
    const legacy = this.legacy.get(jobId);
    const ours = legacy?.workspaceId === workspaceId ? legacy : undefined;
    if (plan.readFrom === 'legacy') return ours ? { status: ours.status, source: 'legacy' } : null;
    const newRecord = this.new.get(`${workspaceId}/${jobId}`);
    if (newRecord) return { status: newRecord.status, source: 'new' };
    return plan.fallback && ours ? { status: ours.status, source: 'legacy' } : null;
  }

  /** listJobs' jobs as a set: every indexed job the stage can read. */
  list(workspaceId: string): string[] {
    return [...this.indexOf(workspaceId)]
      .flatMap((jobId) => {
        const job = this.read(workspaceId, jobId);
        return job ? [`${jobId}:${job.status}:${job.source}`] : [];
      })
      .sort();
  }

  /** Jobs in the legacy layout only: what backfill copies before a migration may reach complete. */
  legacyOnly(): number {
    return [...this.legacy].filter(([jobId, { workspaceId }]) => !this.new.has(`${workspaceId}/${jobId}`)).length;
  }

  /** Jobs in the new layout only (made in complete): what a move back to off would not see. */
  newOnly(): number {
    return [...this.new.keys()].filter((id) => {
      const [workspaceId, jobId] = id.split('/');
      return this.legacy.get(jobId)?.workspaceId !== workspaceId;
    }).length;
  }

  indexOf(workspaceId: string): Set<string> {
    let index = this.index.get(workspaceId);
    if (!index) this.index.set(workspaceId, (index = new Set()));
    return index;
  }
}

const predicted = (value: unknown): Predicted => ({ ok: true, value });
const refused = (code: string): Predicted & { created?: undefined } => ({ ok: false, code });
