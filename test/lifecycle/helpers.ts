import type Redis from 'ioredis';
import { Registry } from 'prom-client';
import { DualWriteQueue, Migration, type DualWriteQueueOptions, type Stage } from '../../src';
import type { KeyState } from '../support/state';

/**
 * What the worker-lifecycle proofs share: the stage table of DESIGN.md written out (so the tests
 * check the package against the design, not against src/stages.ts), the queue's key names, and a
 * managed queue on a stage record.
 */

export interface StageCase {
  stage: Stage;
  /** The stage writes the legacy layout (job:<id>). */
  legacy: boolean;
  /** The stage writes the new layout (ws:<ws>:job:<id>). */
  fresh: boolean;
  /** The queue entry of a job whose legacy key is its own: bare while the legacy layout is written. */
  entry: (workspaceId: string, jobId: string) => string;
}

const bare = (_workspaceId: string, jobId: string) => jobId;
const named = (workspaceId: string, jobId: string) => `${workspaceId}:${jobId}`;

export const STAGE_CASES: StageCase[] = [
  { stage: 'off', legacy: true, fresh: false, entry: bare },
  { stage: 'dualwrite', legacy: true, fresh: true, entry: bare },
  { stage: 'shadow', legacy: true, fresh: true, entry: bare },
  { stage: 'live', legacy: true, fresh: true, entry: bare },
  { stage: 'rampdown', legacy: true, fresh: true, entry: bare },
  { stage: 'complete', legacy: false, fresh: true, entry: named },
];

/** For it.each: [stage, case] rows, so the test name shows the stage. */
export const EACH_STAGE: [Stage, StageCase][] = STAGE_CASES.map((c) => [c.stage, c]);

export const QUEUE = 'queue:default';
export const PROCESSING = 'queue:default:processing';
export const CLAIMS = 'queue:default:claims';
export const EXPIRIES = 'queue:default:expiries';
export const STAGE_KEY = 'dualwrite:stage';

/** The claim record as claim_job (and extend_claim) write it. */
export function claimOf(claimedAt: number, visibilityMs: number, workspaceId: string, workerId: string): string {
  return `${claimedAt}:${visibilityMs}:${workspaceId}:${workerId}`;
}

/** The layouts' job keys of the default layout. */
export const legacyKey = (jobId: string) => `job:${jobId}`;
export const newKey = (workspaceId: string, jobId: string) => `ws:${workspaceId}:job:${jobId}`;
export const indexKey = (workspaceId: string) => `ws:${workspaceId}:jobs`;

export interface ManagedQueue {
  queue: DualWriteQueue;
  registry: Registry;
  /** The operator's side: moves the stage record, configures retention, verifies. */
  migration: Migration;
}

/** A managed queue whose layout's stage record is created at `stage`. */
export async function makeManagedQueue(redis: Redis, stage: Stage, options: Partial<DualWriteQueueOptions> = {}): Promise<ManagedQueue> {
  const migration = new Migration({ redis, stage: 'managed', metrics: false });
  await migration.initStage(stage, { reason: 'lifecycle proof', replicaWaitMs: 0 });
  const registry = new Registry();
  const queue = new DualWriteQueue({ redis, stage: 'managed', metrics: { registry }, heartbeat: false, ...options });
  await queue.ready();
  return { queue, registry, migration };
}

/** Moves the record to `stage` past every guard: these proofs are about the worker calls, not the guards. */
export async function moveStage(migration: Migration, stage: Stage): Promise<void> {
  await migration.setStage(stage, { reason: 'lifecycle proof', force: true, replicaWaitMs: 0 });
}

/** How many scripts the server ran so far (EVALSHA and EVAL, from INFO commandstats). */
export async function scriptCalls(redis: Redis): Promise<number> {
  const stats = String(await redis.info('commandstats'));
  let calls = 0;
  for (const command of ['evalsha', 'eval', 'evalsha_ro', 'eval_ro']) {
    calls += Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  }
  return calls;
}

/** A hash key's fields in a snapshot (undefined when the key is absent). */
export function fieldsIn(state: Record<string, KeyState>, key: string): Record<string, string> | undefined {
  const entry = state[key];
  if (!entry) return undefined;
  if (entry.type !== 'hash') throw new Error(`${key} holds a ${entry.type}`);
  return entry.value;
}

/** A hash key of a snapshot with some fields changed. */
export function withFields(entry: KeyState, fields: Record<string, string>): KeyState {
  if (entry.type !== 'hash') throw new Error(`not a hash: ${entry.type}`);
  return { ...entry, value: { ...entry.value, ...fields } };
}

/** A snapshot entry without its expiry (a PERSIST). */
export function persisted(entry: KeyState): KeyState {
  const { expiresAt: _expiresAt, ...rest } = entry;
  return rest as KeyState;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to be refused, and it went through');
}
