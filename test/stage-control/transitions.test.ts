/**
 * Transitions of the layout's stage record: each guard refuses with nothing changed, --force passes
 * and is recorded, two racing operators never both win, and the migration steps' results (recorded
 * by the steps themselves, with their epochs) are what the guards read.
 */
import Redis from 'ioredis';
import { Migration, TransitionRefusedError, type Stage } from '../../src';
import { putJob, redisState } from '../support/state';
import { useRedis } from '../support/redis';
import { putLegacyJobs, record } from '../migrate/fixtures';
import { startRedis, type RedisHandle } from '../../src/testing';

const ctx = useRedis();

const migration = (redis: Redis = ctx.redis) => new Migration({ redis, stage: 'managed', metrics: false });
const why = { reason: 'test' };

/** Walks a fresh record from off to `stage` the way an operator would, each guard satisfied. */
async function reach(stage: Stage): Promise<void> {
  const m = migration();
  await m.initStage('off', why);
  for (const next of ['dualwrite', 'shadow', 'live', 'rampdown', 'complete'] as const) {
    if (next === 'shadow') await m.backfill();
    if (next === 'live' || next === 'complete') await m.verify();
    await m.setStage(next, why);
    if (next === stage) return;
  }
}

async function refusal(promise: Promise<unknown>): Promise<TransitionRefusedError> {
  const error = await promise.catch((e) => e);
  expect(error).toBeInstanceOf(TransitionRefusedError);
  return error as TransitionRefusedError;
}

describe('stage init', () => {
  it('creates the record with its plan, epoch 1, who and why, and the first history entry', async () => {
    const result = await migration().initStage('dualwrite', { reason: 'first managed stage', by: 'ops@host', maxVerifyAgeMs: 3_600_000 });

    const state = await redisState(ctx.redis);
    expect(result).toMatchObject({ from: null, to: 'dualwrite', epoch: 1, forced: false, replicated: null });
    expect(state['dualwrite:stage'].value).toEqual({
      stage: 'dualwrite', plan: '11L00', epoch: '1', revision: '1', changed_at: String(result.changedAt), changed_by: 'ops@host',
      reason: 'first managed stage', forced: '0', max_verify_age_ms: '3600000', entered_dualwrite_epoch: '1', needs_resync: '0', cleanup_deleted: '0',
    });
    expect((state['dualwrite:stage:history'].value as string[]).map((entry) => JSON.parse(entry))).toEqual([
      { epoch: 1, from: '', to: 'dualwrite', at: result.changedAt, by: 'ops@host', reason: 'first managed stage', forced: false },
    ]);
  });

  it('refuses when a record exists, changing nothing', async () => {
    await migration().initStage('off', why);
    const before = await redisState(ctx.redis);

    const error = await refusal(migration().initStage('live', why));

    expect(error).toMatchObject({ code: 'TRANSITION_REFUSED', rule: 'exists' });
    expect(await redisState(ctx.redis)).toEqual(before);
  });

  it('refuses a missing reason before anything is sent', async () => {
    await expect(migration().initStage('off', { reason: ' ' })).rejects.toMatchObject({ code: 'VALIDATION', field: 'reason' });
    expect(await redisState(ctx.redis)).toEqual({});
  });
});

describe('stage set: the guards', () => {
  it.each<[string, Stage, Stage, string]>([
    ['a forward move of two stages', 'off', 'shadow', 'one_step'],
    ['leaving dualwrite without a backfill', 'dualwrite', 'shadow', 'backfill_needed'],
    ['entering live without a verify', 'shadow', 'live', 'verify_needed'],
    ['entering complete without a verify', 'rampdown', 'complete', 'verify_needed'],
    ['the stage it is in', 'live', 'live', 'same_stage'],
  ])('refuses %s (%s -> %s), changing nothing; --force passes and is recorded', async (_what, from, to, rule) => {
    await migration().initStage(from, why);
    const before = await redisState(ctx.redis);

    const error = await refusal(migration().setStage(to, why));

    expect(error).toMatchObject({ from, to, rule });
    expect(await redisState(ctx.redis)).toEqual(before);
    if (rule === 'same_stage') return; // nothing to force
    const forced = await migration().setStage(to, { reason: 'incident 42', force: true });
    const state = await redisState(ctx.redis);
    expect(forced).toMatchObject({ from, to, epoch: 2, forced: true });
    expect(state['dualwrite:stage'].value).toMatchObject({ stage: to, epoch: '2', forced: '1', reason: 'incident 42' });
    expect(JSON.parse((state['dualwrite:stage:history'].value as string[])[0])).toMatchObject({ from, to, forced: true, reason: 'incident 42' });
  });

  it('passes out of dualwrite once a backfill started and ended in this epoch, not one that spanned a transition', async () => {
    await putLegacyJobs(ctx.redis, 200, ['acme']);
    await migration().initStage('dualwrite', why);
    // A backfill during which the stage moves (off and back) proves nothing: it stops, and says why.
    // The move back waits for the stop: the stopped run records itself, and a transition checked
    // before that record landed would be refused as a concurrent change.
    let moved: Promise<unknown> | undefined;
    const stopped = await migration()
      .backfill({
        batchSize: 10,
        rateLimit: 400, // slow enough that the transition lands while pages remain
        onProgress: () => {
          moved ??= migration().setStage('off', why);
        },
      })
      .catch((e) => e);
    await moved;
    await migration().setStage('dualwrite', why);

    expect(stopped).toMatchObject({ code: 'STAGE_CHANGED' });
    expect(await refusal(migration().setStage('shadow', why))).toMatchObject({ rule: 'backfill_needed', remedy: expect.stringContaining('--resync') });
    await migration().backfill();
    expect((await refusal(migration().setStage('shadow', why))).rule).toBe('resync_needed');
    await migration().backfill({ mode: 'resync' });
    expect(await migration().setStage('shadow', why)).toMatchObject({ to: 'shadow', forced: false });
    expect((await ctx.redis.hgetall('dualwrite:stage')).needs_resync).toBe('0');
  });

  it('takes no backfill resumed from a checkpoint of an earlier epoch: the run walks the whole layout again, and what went stale since is brought level', async () => {
    const jobs = await putLegacyJobs(ctx.redis, 30, ['acme', 'globex']);
    await migration().initStage('dualwrite', why);
    // Epoch 1: a resync stopped (Ctrl-C) after its first page, its checkpoint left behind.
    const ctrlC = new AbortController();
    const stopped = await migration().backfill({ mode: 'resync', batchSize: 10, signal: ctrlC.signal, onProgress: () => ctrlC.abort() });
    const copiedThen = (await ctx.redis.keys('ws:*:job:*')).sort();
    // A rollback to off (epoch 2), where an update reaches only the legacy record of a job copied in
    // epoch 1; then dualwrite again (epoch 3), which asks for a resync.
    await migration().setStage('off', why);
    const updated = jobs.find((job) => copiedThen.includes(`ws:${job.workspaceId}:job:${job.id}`))!;
    await ctx.redis.hset(`job:${updated.id}`, 'status', 'failed', 'updated_at', String(updated.updatedAt + 1000));
    await migration().setStage('dualwrite', why);

    const report = await migration().backfill({ mode: 'resync', batchSize: 10 });

    expect(stopped).toMatchObject({ completed: false, examined: expect.any(Number) });
    expect(copiedThen.length).toBeGreaterThan(0);
    expect(copiedThen.length).toBeLessThan(jobs.length);
    expect(report).toMatchObject({ completed: true, resumed: false, examined: jobs.length });
    const state = await redisState(ctx.redis);
    expect(Object.keys(state).sort()).toEqual(
      [
        'dualwrite:stage', 'dualwrite:stage:history', 'ws:acme:jobs', 'ws:globex:jobs',
        ...jobs.flatMap((job) => [`job:${job.id}`, `ws:${job.workspaceId}:job:${job.id}`]),
      ].sort(),
    );
    for (const job of jobs) expect(state[`ws:${job.workspaceId}:job:${job.id}`]).toEqual(state[`job:${job.id}`]);
    expect(state[`job:${updated.id}`].value).toMatchObject({ status: 'failed' });
    expect(state['dualwrite:stage'].value).toMatchObject({ epoch: '3', last_backfill_started_epoch: '3', last_backfill_ended_epoch: '3' });
    expect(await migration().setStage('shadow', why)).toMatchObject({ to: 'shadow', forced: false });
  });

  it('needs a clean verify of this epoch into live, and calls it stale after maxVerifyAgeMs', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await migration().initStage('shadow', { reason: 'test', maxVerifyAgeMs: 200 });
    // Not backfilled: the verify finds missing_new and is not clean.
    await migration().verify();
    expect((await refusal(migration().setStage('live', why))).rule).toBe('verify_needed');
    await migration().backfill();
    await migration().verify();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await refusal(migration().setStage('live', why))).rule).toBe('verify_stale');
    await migration().verify();

    expect(await migration().setStage('live', why)).toMatchObject({ to: 'live', epoch: 2 });
  });

  it('rolls back any distance at once, but never into a legacy-reading stage once cleanup deleted', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await reach('complete');
    expect(await migration().setStage('off', { reason: 'fault' })).toMatchObject({ from: 'complete', to: 'off' });
    await migration().setStage('dualwrite', { reason: 'forward again', force: true });
    for (const next of ['shadow', 'live', 'rampdown', 'complete'] as const) await migration().setStage(next, { reason: 'again', force: true });

    const cleaned = await migration().cleanup({ yes: true });
    expect(cleaned.results.deleted).toBe(1);
    const before = await redisState(ctx.redis);

    for (const to of ['shadow', 'dualwrite', 'off'] as const) {
      expect(await refusal(migration().setStage(to, { reason: 'fault' }))).toMatchObject({ rule: 'legacy_deleted' });
    }
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await migration().setStage('rampdown', { reason: 'fault' })).toMatchObject({ from: 'complete', to: 'rampdown' });
  });

  it('refuses when the record is not at the expected epoch', async () => {
    await migration().initStage('off', why);
    const before = await redisState(ctx.redis);

    const error = await refusal(migration().setStage('dualwrite', { reason: 'x', expectedEpoch: 7 }));

    expect(error.rule).toBe('expected_epoch');
    expect(await redisState(ctx.redis)).toEqual(before);
    expect(await migration().setStage('dualwrite', { reason: 'x', expectedEpoch: 1 })).toMatchObject({ epoch: 2 });
  });

  it('of two operators racing on their own connections, exactly one wins, every time', async () => {
    const clients = [new Redis(ctx.handle.url), new Redis(ctx.handle.url)];
    try {
      await migration().initStage('live', why);
      for (let round = 0; round < 20; round++) {
        const targets: Stage[] = round % 2 === 0 ? ['rampdown', 'shadow'] : ['shadow', 'rampdown'];
        const epochBefore = Number(await ctx.redis.hget('dualwrite:stage', 'epoch'));
        // Each operator names the epoch it looked at (--expect-epoch): whether the other's write lands
        // before its read or between its read and its write, it loses.
        const outcomes = await Promise.allSettled(
          targets.map((to, i) => migration(clients[i]).setStage(to, { reason: `round ${round}`, force: true, expectedEpoch: epochBefore })),
        );

        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect({ round, won: won.length }).toEqual({ round, won: 1 });
        expect(lost[0].reason).toBeInstanceOf(TransitionRefusedError);
        expect(Number(await ctx.redis.hget('dualwrite:stage', 'epoch'))).toBe(epochBefore + 1);
        await migration().setStage('live', { reason: 'reset', force: true });
      }
    } finally {
      clients.forEach((client) => client.disconnect());
    }
  });

  it('keeps a bounded history, newest first', async () => {
    await migration().initStage('live', why);
    for (let i = 0; i < 210; i++) await migration().setStage(i % 2 === 0 ? 'rampdown' : 'live', { reason: `step ${i}`, force: true });

    const history = await ctx.redis.lrange('dualwrite:stage:history', 0, -1);

    expect(history).toHaveLength(200);
    expect(JSON.parse(history[0])).toMatchObject({ epoch: 211, reason: 'step 209' });
  });
});

describe('status: the next steps', () => {
  it('in live without a fresh clean verify, say to run verify before the move to rampdown, and only the move once it is fresh', async () => {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    // Its clean verify ran in shadow: entering live began another epoch.
    await reach('live');
    const before = await redisState(ctx.redis);

    const stale = await migration().status();
    const stateAfterStatus = await redisState(ctx.redis);
    await migration().verify();
    const fresh = await migration().status();

    const move = { description: 'move the whole fleet to rampdown', command: 'redis-dual-write stage set rampdown --reason "<why>"' };
    expect(stale.findings.map((finding) => finding.kind)).toEqual(['verify_stale']);
    expect(stale.next_steps).toEqual([{ description: 'prove the layouts equal in live', command: 'redis-dual-write verify' }, move]);
    expect(stateAfterStatus).toEqual(before);
    expect(fresh.findings).toEqual([]);
    expect(fresh.next_steps).toEqual([move]);
  });
});

describe('stage set with a replica', () => {
  let replica: RedisHandle;
  let replicaClient: Redis;
  beforeAll(async () => {
    const { hostname, port } = new URL(ctx.handle.url);
    replica = await startRedis({ via: 'binary', serverArgs: ['--replicaof', hostname, port, '--enable-debug-command', 'yes'] });
    replicaClient = new Redis(replica.url);
    for (let i = 0; i < 100 && !/master_link_status:up/.test(await replicaClient.info('replication')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(async () => {
    replicaClient?.disconnect();
    await replica?.stop();
  });

  it('waits for the replica to acknowledge, and warns when none does in time', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (message: string) => warnings.push(message), error() {} };
    const m = new Migration({ redis: ctx.redis, stage: 'managed', metrics: false, logger });

    const acknowledged = await m.initStage('off', why);
    const sleeping = replicaClient.call('DEBUG', 'SLEEP', '1').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const unacknowledged = await m.setStage('dualwrite', { reason: 'replica asleep', replicaWaitMs: 300 });
    await sleeping;

    expect(acknowledged.replicated).toBe(true);
    expect(unacknowledged.replicated).toBe(false);
    expect(warnings.filter((w) => w.includes('no replica acknowledged'))).toHaveLength(1);
  });
});
