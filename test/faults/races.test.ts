/**
 * Scenario 5, races: many connections at once, as many service instances would. Redis runs one
 * script at a time, so every race must resolve as if the calls had come one after another.
 */
import Redis from 'ioredis';
import { StatusConflictError, type DualWriteQueue, type JobStatus, type Stage } from '../../src';
import { checkInvariants, tally } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow, scaled, seededRandom, SOAK } from '../support/soak';
import { againstAcknowledged, runWorkload, sum } from '../support/workload';

const ctx = useRedis();
const CONNECTIONS = 16;
let clients: Redis[] = [];
let queues: DualWriteQueue[] = [];

beforeEach(async () => {
  clients = Array.from({ length: CONNECTIONS }, () => new Redis(ctx.handle.url, { disconnectTimeout: 50 }));
  queues = await Promise.all(clients.map(async (client) => (await makeQueue(client, 'dualwrite')).queue));
});
afterEach(() => {
  for (const client of clients) client.disconnect();
});

describe('scenario 5: races', () => {
  it('many connections enqueue with one idempotency key at once: one job, one queue entry, the same jobId for every caller', async () => {
    const rounds = scaled(10);
    let calls = 0;
    for (let round = 0; round < rounds; round++) {
      const request = { workspaceId: 'acme', type: 'payment.capture', payload: { round }, idempotencyKey: `capture-${round}` };

      const answers = await Promise.all(queues.map((queue) => queue.enqueue(request)));
      calls += answers.length;

      expect(new Set(answers.map((a) => a.jobId)).size).toBe(1);
      expect(answers.filter((a) => a.created)).toHaveLength(1);
    }
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(report.jobs).toHaveLength(rounds);
    expect(await ctx.redis.llen('queue:default')).toBe(rounds);
    recordRow({
      scenario: 5, name: 'races (16 connections at once)', operations: calls, faults: rounds, faultKind: 'racing rounds and stage changes',
      lost: 0, duplicated: report.jobs.length - rounds, halfWritten: report.violations.length, callerErrors: 0,
    });
  });

  it('many updates with the same expectedStatus at once: exactly one wins, the rest get StatusConflictError with its status', async () => {
    const rounds = scaled(10);
    const targets: JobStatus[] = ['running', 'cancelled', 'failed', 'succeeded'];
    let calls = 0;
    let conflicts = 0;
    for (let round = 0; round < rounds; round++) {
      const { jobId } = await queues[0].enqueue({ workspaceId: 'acme', type: 't', payload: { round } });

      const settled = await Promise.allSettled(
        queues.map((queue, i) => queue.updateStatus({ workspaceId: 'acme', jobId, status: targets[i % 4], expectedStatus: 'queued' })),
      );
      calls += settled.length + 1;

      const winners = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [targets[i % 4]] : []));
      expect(winners).toHaveLength(1);
      const losers = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
      conflicts += losers.length;
      for (const loser of losers) {
        expect(loser).toBeInstanceOf(StatusConflictError);
        expect(loser).toMatchObject({ expected: 'queued', actual: winners[0] });
      }
      expect(await ctx.redis.hget(`job:${jobId}`, 'status')).toBe(winners[0]);
      expect(await ctx.redis.hget(`ws:acme:job:${jobId}`, 'status')).toBe(winners[0]);
    }
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    recordRow({
      scenario: 5, name: 'races (16 connections at once)', operations: calls, faults: rounds, faultKind: 'racing rounds and stage changes',
      lost: 0, duplicated: 0, halfWritten: report.violations.length, callerErrors: conflicts,
      callerErrorKinds: { 'STATUS_CONFLICT (the expected losers)': conflicts },
    });
  });

  it('updates racing stage changes among the stages that write both layouts: nothing lost, layouts agree', async () => {
    const stages: Stage[] = ['dualwrite', 'shadow', 'live', 'rampdown'];
    const random = seededRandom(SOAK.seed);
    let stageChanges = 0;

    const result = await runWorkload({
      queues,
      jobs: scaled(80),
      concurrency: CONNECTIONS,
      // A rolling deploy: instances move to another stage at any point, in any order.
      afterCall: () => {
        if (random() < 0.2) {
          queues[Math.floor(random() * queues.length)].setStage(stages[Math.floor(random() * stages.length)]);
          stageChanges++;
        }
      },
    });

    expect(stageChanges).toBeGreaterThan(0);
    expect(result.callerErrors).toEqual({});
    expect(result.staleReads).toBe(0);
    const report = await checkInvariants(ctx.redis);
    expect(report.violations).toEqual([]);
    expect(againstAcknowledged(report, result)).toEqual({ lost: 0, stale: 0 });
    expect(report.jobs).toHaveLength(result.logicalJobs);
    recordRow({
      scenario: 5, name: 'races (16 connections at once)', operations: result.calls, faults: stageChanges, faultKind: 'racing rounds and stage changes',
      ...tally(report, result.acknowledged.values(), result.logicalJobs), callerErrors: sum(result.callerErrors),
    });
  });
});
