import type Redis from 'ioredis';
import { makeQueue, useRedis } from '../support/redis';
import { putJob, redisState, type JobRecord, type KeyState } from '../support/state';

// The bare scripts of `npm run bench` are the baselines of issue 11's targets: each must do the
// package operation's work, writing the same keys, fields and values, or a ratio against it says
// nothing. Each test runs the package once and the bare script once on the same arranged state,
// and compares the whole resulting states.
const { SCRIPTS } = require('../../scripts/bench/bare') as { SCRIPTS: Record<string, { body: string }> };

const ctx = useRedis();

const PAYLOAD = { to: 'a@example.com', n: 1 };
const TYPE = 'email.send';
const TTL = 86_400;
const QUEUE = 'queue:default';
const CREATED = 1_700_000_000_000;

async function bare(redis: Redis, name: string, keys: string[], args: (string | number)[]): Promise<unknown> {
  const sha = String(await redis.script('LOAD', SCRIPTS[name].body));
  return redis.evalsha(sha, keys.length, ...keys, ...args);
}

/**
 * The state with each expiry as whole minutes from now: the two runs set theirs a few ms apart, and
 * an idempotency key's TTL of a day shows as 1440 in both.
 */
async function stateWithTtls(redis: Redis): Promise<Record<string, KeyState>> {
  const state = await redisState(redis);
  const now = Date.now();
  for (const entry of Object.values(state)) {
    if (entry.expiresAt !== undefined) entry.expiresAt = Math.round((entry.expiresAt - now) / 60_000);
  }
  return state;
}

const fieldOf = (state: Record<string, KeyState>, key: string, field: string): string => {
  const entry = state[key];
  if (entry?.type !== 'hash') throw new Error(`${key} is no hash in ${JSON.stringify(state)}`);
  return entry.value[field];
};

test('the bare 5-write script writes what enqueue writes in dualwrite, an idempotency key given', async () => {
  const { queue } = await makeQueue(ctx.redis, 'dualwrite');
  await queue.enqueue({ workspaceId: 'acme', type: TYPE, payload: PAYLOAD, jobId: 'j1', idempotencyKey: 'k1' });
  const byPackage = await stateWithTtls(ctx.redis);
  const createdAt = fieldOf(byPackage, 'ws:acme:job:j1', 'created_at');
  const remembered = byPackage['ws:acme:idem:k1'];
  await ctx.redis.flushall();

  const reply = await bare(ctx.redis, 'enqueue', ['ws:acme:idem:k1', 'job:j1', 'ws:acme:job:j1', QUEUE, 'ws:acme:jobs'],
    ['j1', 'acme', TYPE, JSON.stringify(PAYLOAD), createdAt, 'k1', remembered?.type === 'string' ? remembered.value : '', TTL]);

  expect(reply).toBe(1);
  expect(await stateWithTtls(ctx.redis)).toEqual(byPackage);
  expect(Object.keys(byPackage).sort()).toEqual(['job:j1', QUEUE, 'ws:acme:idem:k1', 'ws:acme:job:j1', 'ws:acme:jobs']);
});

test('the bare batch script writes what enqueueMany writes in dualwrite, for each job of the batch', async () => {
  const { queue } = await makeQueue(ctx.redis, 'dualwrite');
  const jobs = [
    { workspaceId: 'acme', jobId: 'j1', idempotencyKey: 'k1' },
    { workspaceId: 'beta', jobId: 'j2', idempotencyKey: 'k2' },
  ];
  await queue.enqueueMany(jobs.map((job) => ({ ...job, type: TYPE, payload: PAYLOAD })));
  const byPackage = await stateWithTtls(ctx.redis);
  const createdAt = fieldOf(byPackage, 'ws:acme:job:j1', 'created_at');
  await ctx.redis.flushall();

  const keys = [QUEUE];
  const args: (string | number)[] = [createdAt, TTL];
  for (const { workspaceId: ws, jobId, idempotencyKey } of jobs) {
    const remembered = byPackage[`ws:${ws}:idem:${idempotencyKey}`];
    keys.push(`ws:${ws}:idem:${idempotencyKey}`, `job:${jobId}`, `ws:${ws}:job:${jobId}`, `ws:${ws}:jobs`);
    args.push(jobId, ws, TYPE, JSON.stringify(PAYLOAD), idempotencyKey, remembered?.type === 'string' ? remembered.value : '');
  }
  const reply = await bare(ctx.redis, 'enqueueBatch', keys, args);

  expect(reply).toBe(1);
  expect(await stateWithTtls(ctx.redis)).toEqual(byPackage);
  expect(Object.keys(byPackage)).toHaveLength(9);
});

/** j1 queued in both layouts behind j0, as enqueue in live leaves them. */
async function arrangeQueuedInLive(redis: Redis): Promise<void> {
  const job = (id: string): JobRecord => ({ id, workspaceId: 'acme', type: TYPE, payload: PAYLOAD, status: 'queued', createdAt: CREATED, updatedAt: CREATED });
  for (const id of ['j0', 'j1']) {
    await putJob(redis, `job:${id}`, job(id));
    await putJob(redis, `ws:acme:job:${id}`, job(id));
  }
  await redis.rpush(QUEUE, 'j0', 'j1');
  await redis.zadd('ws:acme:jobs', CREATED, 'j0', CREATED, 'j1');
}

test('the bare updateStatus script writes what updateStatus writes in live, queued to running', async () => {
  await arrangeQueuedInLive(ctx.redis);
  const { queue } = await makeQueue(ctx.redis, 'live');
  await queue.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running' });
  const byPackage = await redisState(ctx.redis);
  const updatedAt = fieldOf(byPackage, 'ws:acme:job:j1', 'updated_at');
  await ctx.redis.flushall();
  await arrangeQueuedInLive(ctx.redis);

  const reply = await bare(ctx.redis, 'updateStatus', ['job:j1', 'ws:acme:job:j1', `${QUEUE}:claims`, QUEUE], ['running', updatedAt, 'j1']);

  expect(reply).toBe('queued');
  expect(await redisState(ctx.redis)).toEqual(byPackage);
  expect(byPackage[QUEUE]).toEqual({ type: 'list', value: ['j0'] });
});

test('the bare getJob script reads both records in live and returns the read origin, writing nothing', async () => {
  await arrangeQueuedInLive(ctx.redis);
  await ctx.redis.hset('job:j1', 'legacy_only', 'x');
  const before = await redisState(ctx.redis);

  const reply = await bare(ctx.redis, 'getJob', ['ws:acme:job:j1', 'job:j1'], []);

  const { queue } = await makeQueue(ctx.redis, 'live');
  const job = await queue.getJob({ workspaceId: 'acme', jobId: 'j1' });
  const fields = reply as string[];
  const record = Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]])));
  expect(record).toEqual(before['ws:acme:job:j1'].value);
  expect(job).toMatchObject({ id: 'j1', source: 'new', status: record.status, createdAt: Number(record.created_at) });
  expect(await redisState(ctx.redis)).toEqual(before);
});
