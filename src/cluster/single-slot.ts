import { SAMPLE_IDS } from '../custom-layout';
import { CrossSlotError } from '../errors';
import type { KeyLayout } from '../keys';
import { keySlot } from './slot';

/**
 * Refuses, before anything is sent, a script call whose keys span hash slots: in Redis Cluster the
 * server would answer CROSSSLOT, and an operation split over slots could not be atomic.
 */
export function assertOneSlot(operation: string, keys: readonly string[]): void {
  if (keys.length < 2) return;
  const slot = keySlot(keys[0]);
  for (let i = 1; i < keys.length; i++) {
    const other = keySlot(keys[i]);
    if (other !== slot) throw new CrossSlotError(operation, [{ key: keys[0], slot }, { key: keys[i], slot: other }]);
  }
}

/** Splits items into groups whose keys share a slot, keeping their order within each group. */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = keySlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}

/**
 * The keys each script call of the queue and the migration passes, built from the layout on sample
 * ids: several workspaces and jobs per batch, as enqueueMany, recoverStalled and the migration's
 * batches mix them. Mirrors the calls in queue.ts and migrate/.
 */
export function operationKeys(keys: KeyLayout, queueName: string): { operation: string; keys: string[] }[] {
  const { workspaces, jobs, idempotencyKeys } = SAMPLE_IDS;
  const pairs = workspaces.flatMap((workspaceId) => jobs.map((jobId) => ({ workspaceId, jobId })));
  const queue = [
    keys.queue(queueName), keys.processing(queueName), keys.claims(queueName), keys.orphans(queueName), keys.unsupported(queueName),
    keys.expiries(queueName),
  ];
  const job = ({ workspaceId, jobId }: { workspaceId: string; jobId: string }) => [
    keys.legacyJob(jobId),
    keys.newJob(workspaceId, jobId),
    keys.workspaceIndex(workspaceId),
  ];
  const idempotency = (workspaceId: string) => idempotencyKeys.map((key) => keys.idempotency(workspaceId, key));
  const stage = keys.stage();
  const operations = [
    {
      operation: 'enqueue',
      keys: pairs.flatMap((pair) => [...idempotency(pair.workspaceId), ...job(pair), keys.queue(queueName)]),
    },
    { operation: 'enqueueMany', keys: [keys.queue(queueName), ...pairs.flatMap((pair) => [...idempotency(pair.workspaceId), ...job(pair)])] },
    { operation: 'updateStatus, requeue, deleteJob and maintain', keys: [...queue, ...pairs.flatMap((pair) => [...job(pair), ...idempotency(pair.workspaceId)])] },
    { operation: 'claim', keys: [...queue, ...pairs.flatMap(job)] },
    { operation: 'recoverStalled', keys: [...queue, ...pairs.flatMap((pair) => job(pair).slice(0, 2))] },
    ...workspaces.map((workspaceId) => ({
      operation: 'getJob and listJobs',
      keys: [...jobs.flatMap((jobId) => job({ workspaceId, jobId }).slice(0, 2)), keys.workspaceIndex(workspaceId), keys.expiries(queueName)],
    })),
    { operation: 'backfill, verify and cleanup batches', keys: [keys.checkpoint(queueName), ...pairs.flatMap(job)] },
    { operation: 'stage control', keys: [keys.stageHistory(), keys.instances(), keys.instanceInfo()] },
  ];
  // Every script that reads or writes jobs reads the stage record in the same call.
  return operations.map(({ operation, keys: list }) => ({ operation, keys: [stage, ...list] }));
}

/**
 * Refuses a layout under which some operation's keys would land in different slots, tried on sample
 * ids when the queue is built on a Cluster: better at startup than at the first enqueue.
 */
export function checkClusterLayout(keys: KeyLayout, queueName: string): void {
  for (const { operation, keys: operationKeyList } of operationKeys(keys, queueName)) {
    assertOneSlot(`the key layout's ${operation}`, operationKeyList);
  }
}
