/**
 * What updateStatus refuses, and what it no longer looks at. The update learns a key's type from the
 * read it makes anyway (a redis.pcall whose error is WRONGTYPE), or asks TYPE on the paths that write
 * a key without reading it first, and asks about a write's ACL only when it will make that write. So
 * these prove: a wrong type found by such a read, and an ACL refusal, still leave Redis byte for byte
 * as it was (DUMP of every key, field order and expiry included); and a key the update neither reads
 * nor writes does not stand in its way.
 */
import Redis from 'ioredis';
import { DualWriteQueue, KeyTypeError, PermissionError, serviceAclRules, type Stage, type UpdateStatusInput } from '../../src';
import { makeQueue, serverVersion, useRedis } from '../support/redis';
import { hash, jobHash, list, putJob, redisState, str, type JobRecord, type KeyState } from '../support/state';

const ctx = useRedis();

const ALL_STAGES: Stage[] = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'];
const WRITES_LEGACY: Stage[] = ['off', 'dualwrite', 'shadow', 'live', 'rampdown'];

const LEGACY = 'job:j1';
const NEW = 'ws:acme:job:j1';
const QUEUE = 'queue:default';
const PROCESSING = 'queue:default:processing';
const CLAIMS = 'queue:default:claims';
const EXPIRIES = 'queue:default:expiries';
const CREATED = 1_700_000_000_000;
const UPDATED = CREATED + 5_000;

/** The queue entry and claim entry of j1: bare while the stage writes the legacy layout (job:j1 is ours). */
const entryIn = (stage: Stage) => (stage === 'complete' ? 'acme:j1' : 'j1');

function record(overrides: Partial<JobRecord> = {}): JobRecord {
  return { id: 'j1', workspaceId: 'acme', type: 'email.send', payload: { n: 1 }, status: 'queued', createdAt: CREATED, updatedAt: UPDATED, ...overrides };
}

/** j1 in both layouts with `status`; queued, it waits at the head of the queue; running, w1 holds its claim. */
async function putJ1(stage: Stage, status: 'queued' | 'running'): Promise<void> {
  await putJob(ctx.redis, LEGACY, record({ status }));
  await putJob(ctx.redis, NEW, record({ status }));
  if (status === 'queued') await ctx.redis.rpush(QUEUE, entryIn(stage), 'j0');
  if (status === 'running') {
    await ctx.redis.zadd(PROCESSING, UPDATED + 60_000, entryIn(stage));
    await ctx.redis.hset(CLAIMS, entryIn(stage), `${UPDATED}:60000:acme:w1`);
  }
}

/** Every key as DUMP serialises it (type, encoding, field order), with its expiry: byte for byte. */
async function bytes(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of (await ctx.redis.keys('*')).sort()) {
    const dump = await ctx.redis.dumpBuffer(key);
    out[key] = `${dump?.toString('hex')} expires ${String(await ctx.redis.call('PEXPIRETIME', key))}`;
  }
  return out;
}

/** The updated_at the update wrote into `key`: Redis' clock during the call. */
function freshUpdatedAt(state: Record<string, KeyState>, key: string, before: number, after: number): number {
  const ms = Number((state[key].value as Record<string, string>).updated_at);
  expect(ms).toBeGreaterThanOrEqual(before - 1_000);
  expect(ms).toBeLessThanOrEqual(after + 1_000);
  return ms;
}

describe('updateStatus refusals and the keys it looks at', () => {
  describe('a wrong type found by the read the update makes anyway', () => {
    const cases: [string, 'queued' | 'running', string, string, string, () => Promise<unknown>, Omit<UpdateStatusInput, 'workspaceId' | 'jobId'>][] = [
      ['the claims key, read by a guarded update', 'queued', CLAIMS, 'hash', 'string', () => ctx.redis.set(CLAIMS, 'x'), { status: 'running', workerId: 'w1' }],
      ['the claims key, read by an update to a terminal status', 'queued', CLAIMS, 'hash', 'string', () => ctx.redis.set(CLAIMS, 'x'), { status: 'cancelled' }],
      ['the expiries key, read by every update', 'queued', EXPIRIES, 'zset', 'hash', () => ctx.redis.hset(EXPIRIES, 'f', 'v'), { status: 'running' }],
      ['the queue, read by an update that takes the job off it', 'queued', QUEUE, 'list', 'hash', async () => {
        await ctx.redis.del(QUEUE);
        await ctx.redis.hset(QUEUE, 'f', 'v');
      }, { status: 'running' }],
      ['the processing key, written by an update that ends a claim', 'running', PROCESSING, 'zset', 'hash', async () => {
        await ctx.redis.del(PROCESSING);
        await ctx.redis.hset(PROCESSING, 'f', 'v');
      }, { status: 'succeeded', workerId: 'w1' }],
    ];
    for (const stage of ALL_STAGES) {
      it.each(cases)(`in ${stage}, %s, is a KeyTypeError naming it, and Redis stays byte for byte as it was`, async (_, status, key, expectedType, actualType, arrange, input) => {
        const { queue } = await makeQueue(ctx.redis, stage);
        await putJ1(stage, status);
        await arrange();
        const before = await bytes();

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', ...input }).catch((e) => e);

        expect(error).toBeInstanceOf(KeyTypeError);
        expect(error).toMatchObject({ code: 'KEY_TYPE', key, expectedType, actualType });
        expect(await bytes()).toEqual(before);
      });
    }
  });

  describe('a key the update neither reads nor writes is not looked at', () => {
    it.each(ALL_STAGES)('in %s, an update of a running job nobody claims leaves a queue and a processing key of another type alone', async (stage) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      await putJob(ctx.redis, LEGACY, record({ status: 'running' }));
      await putJob(ctx.redis, NEW, record({ status: 'running' }));
      await ctx.redis.hset(QUEUE, 'not', 'a list');
      await ctx.redis.set(PROCESSING, 'not a zset');
      const written = stage === 'complete' ? NEW : LEGACY;

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'failed' });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'running', status: 'failed', repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const failed = jobHash(record({ status: 'failed', updatedAt: freshUpdatedAt(state, written, before, after) }));
      expect(state).toEqual({
        [LEGACY]: failed, // in complete too: the legacy twin follows the job
        [NEW]: stage === 'off' ? jobHash(record({ status: 'running' })) : failed,
        [QUEUE]: hash({ not: 'a list' }),
        [PROCESSING]: str('not a zset'),
      });
    });

    it.each(ALL_STAGES)('in %s, an unguarded update to a status that is not terminal leaves claims and processing keys of another type alone', async (stage) => {
      const { queue } = await makeQueue(ctx.redis, stage);
      await putJ1(stage, 'queued');
      await ctx.redis.set(CLAIMS, 'not a hash');
      await ctx.redis.set(PROCESSING, 'not a zset');
      const written = stage === 'complete' ? NEW : LEGACY;

      const before = Date.now();
      const result = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' });
      const after = Date.now();

      expect(result).toEqual({ jobId: 'j1', previousStatus: 'queued', status: 'running', repaired: 'none', expiresAt: null });
      const state = await redisState(ctx.redis);
      const running = jobHash(record({ status: 'running', updatedAt: freshUpdatedAt(state, written, before, after) }));
      expect(state).toEqual({
        [LEGACY]: running, // in complete too: the legacy twin follows the job
        [NEW]: stage === 'off' ? jobHash(record()) : running,
        [QUEUE]: list('j0'),
        [CLAIMS]: str('not a hash'),
        [PROCESSING]: str('not a zset'),
      });
    });
  });

  describe('an ACL user refused', () => {
    let service: Redis | undefined;
    let version = '';
    beforeAll(async () => {
      version = await serverVersion(ctx.redis);
    });
    afterEach(async () => {
      service?.disconnect();
      service = undefined;
      await ctx.redis.call('ACL', 'DELUSER', 'service');
    });

    /** A queue on a connection of an ACL user with these rules; the default user preloads the scripts. */
    async function queueAs(stage: Stage, rules: string[]): Promise<DualWriteQueue> {
      await new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'off', metrics: false }).ready();
      await ctx.redis.call('ACL', 'SETUSER', 'service', 'reset', 'on', '>service-secret', ...rules);
      const url = new URL(ctx.handle.url);
      service = new Redis({ host: url.hostname, port: Number(url.port), username: 'service', password: 'service-secret' });
      return (await makeQueue(service, stage)).queue;
    }
    const rules = () => serviceAclRules('', { serverVersion: version });

    const writes: [string, string, 'queued' | 'running', Omit<UpdateStatusInput, 'workspaceId' | 'jobId'>, (stage: Stage) => string][] = [
      ['HSET', 'the job records', 'queued', { status: 'running' }, () => LEGACY], // in complete, the legacy twin's first
      ['LREM', 'the queue entry', 'queued', { status: 'running' }, () => QUEUE],
      ['ZREM', 'the processing entry of the claim it ends', 'running', { status: 'succeeded', workerId: 'w1' }, () => PROCESSING],
    ];
    for (const stage of ALL_STAGES) {
      it.each(writes)(`in ${stage}, without %s (%s) the update is a PermissionError naming it, and Redis stays byte for byte as it was`, async (command, _, status, input, key) => {
        const queue = await queueAs(stage, [...rules(), `-${command.toLowerCase()}`]);
        await putJ1(stage, status);
        const before = await bytes();

        const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', ...input }).catch((e) => e);

        expect(error).toBeInstanceOf(PermissionError);
        expect(error).toMatchObject({ code: 'NO_PERMISSION', command });
        expect(error.message).toContain(key(stage));
        expect(await bytes()).toEqual(before);
      });
    }

    it.each(WRITES_LEGACY)('in %s, a user that may not read job:<id> gets a PermissionError from the read itself, and nothing is written', async (stage) => {
      const queue = await queueAs(stage, rules().map((rule) => (rule === '~job:*' ? '~job:other' : rule)));
      await putJ1(stage, 'queued');
      const before = await bytes();

      const error = await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' }).catch((e) => e);

      expect(error).toBeInstanceOf(PermissionError);
      expect(error.code).toBe('NO_PERMISSION');
      expect(await bytes()).toEqual(before);
    });

    it.each(WRITES_LEGACY)(
      'in %s, the same user reading a job that exists only in job:<id> gets a PermissionError from getJob',
      async (stage) => {
        const queue = await queueAs(stage, rules().map((rule) => (rule === '~job:*' ? '~job:other' : rule)));
        await putJob(ctx.redis, LEGACY, record());
        const before = await bytes();

        const error = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' }).catch((e) => e);

        expect(error).toBeInstanceOf(PermissionError);
        expect(await bytes()).toEqual(before);
      },
    );
  });
});
