// Each scenario prepares Redis and returns what one measured run does. Every writer gets the same
// payload, so the figures compare the write paths, not the data.
const { randomUUID } = require('node:crypto');
const { DualWriteQueue } = require('../../dist');

const PAYLOAD = { to: 'user@example.com', template: 'signup', vars: { name: 'Ada', plan: 'pro' } };
const PAYLOAD_JSON = JSON.stringify(PAYLOAD);
const WORKSPACES = 50;
const wsOf = (i) => `ws${i % WORKSPACES}`;

function jobFields(jobId, workspaceId, now, payload = PAYLOAD) {
  return ['id', jobId, 'workspace_id', workspaceId, 'type', 'email.send', 'payload', JSON.stringify(payload),
    'status', 'queued', 'created_at', now, 'updated_at', now];
}

/** The package, as a service would call it. */
function pkgQueue(redis, stage) {
  return new DualWriteQueue({ redis, queueName: 'bench', stage, metrics: false });
}

const scenarios = {
  'enqueue x1': (ctx) => enqueueScenario(ctx, 1),
  'enqueue x64': (ctx) => enqueueScenario(ctx, 64),
  'enqueueMany x100': (ctx) => enqueueManyScenario(ctx, 1),
  'enqueueMany x100 (4 in flight)': (ctx) => enqueueManyScenario(ctx, 4),
  'updateStatus x64': async ({ redis, jobs }) => {
    const queue = pkgQueue(redis, 'live');
    const ids = await seedJobs(queue, jobs);
    return { group: 'package', jobs, calls: jobs, inFlight: 64, op: (i) => queue.updateStatus({ workspaceId: wsOf(i), jobId: ids[i], status: 'running' }) };
  },
  'getJob live x64': async ({ redis, jobs }) => {
    const queue = pkgQueue(redis, 'live');
    const ids = await seedJobs(queue, jobs);
    return { group: 'package', jobs, calls: jobs, inFlight: 64, op: (i) => queue.getJob({ workspaceId: wsOf(i), jobId: ids[i] }) };
  },
  'separate commands x1': (ctx) => separateCommands(ctx, 1),
  'separate commands x64': (ctx) => separateCommands(ctx, 64),
  'MULTI/EXEC x64': async ({ redis, jobs }) => ({
    group: 'hand-written',
    jobs,
    calls: jobs,
    inFlight: 64,
    op: (i) => {
      const jobId = randomUUID();
      const now = String(Date.now());
      return redis.multi()
        .set(`ws:${wsOf(i)}:idem:k${i}`, jobId, 'EX', 86400, 'NX')
        .hset(`job:${jobId}`, ...jobFields(jobId, wsOf(i), now))
        .hset(`ws:${wsOf(i)}:job:${jobId}`, ...jobFields(jobId, wsOf(i), now))
        .rpush('queue:bench', jobId)
        .exec();
    },
  }),
  'bare 5-write script x64': async ({ redis, jobs }) => {
    const sha = String(await redis.script('LOAD', BARE_SCRIPT));
    return {
      group: 'hand-written',
      jobs,
      calls: jobs,
      inFlight: 64,
      op: (i) => {
        const jobId = randomUUID();
        const ws = wsOf(i);
        return redis.evalsha(sha, 5, `ws:${ws}:idem:k${i}`, `job:${jobId}`, `ws:${ws}:job:${jobId}`, 'queue:bench', `ws:${ws}:jobs`, jobId, ws, 'email.send', PAYLOAD_JSON);
      },
    };
  },
  'bullmq add x1': (ctx) => bullmqAdd(ctx, 1),
  'bullmq add x64': (ctx) => bullmqAdd(ctx, 64),
  'bullmq addBulk x100': (ctx) => addBulkScenario(ctx, 1),
  'bullmq addBulk x100 (4 in flight)': (ctx) => addBulkScenario(ctx, 4),
};

/** Batches of 100; with one batch in flight the client and the server take turns. */
async function enqueueManyScenario({ redis, jobs }, inFlight) {
  const queue = pkgQueue(redis, 'dualwrite');
  return {
    group: 'package',
    jobs,
    calls: Math.ceil(jobs / 100),
    inFlight,
    op: (call) => queue.enqueueMany(batchOf(call, 100, (i) => ({ workspaceId: wsOf(i), type: 'email.send', payload: PAYLOAD, idempotencyKey: `k${i}` }))),
  };
}

async function addBulkScenario({ jobs, bullmq }, inFlight) {
  return {
    group: 'bullmq',
    jobs,
    calls: Math.ceil(jobs / 100),
    inFlight,
    op: (call) => bullmq.addBulk(batchOf(call, 100, () => ({ name: 'email.send', data: PAYLOAD }))),
  };
}

/** The writes of the reviewed design in one script, with no checks at all: the floor for ours. */
const BARE_SCRIPT = `#!lua
local now = redis.call('TIME')[1]
local fields = {'id', ARGV[1], 'workspace_id', ARGV[2], 'type', ARGV[3], 'payload', ARGV[4], 'status', 'queued', 'created_at', now, 'updated_at', now}
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', 86400)
return 1`;

async function enqueueScenario({ redis, jobs }, inFlight) {
  const queue = pkgQueue(redis, 'dualwrite');
  await queue.ready();
  return {
    group: 'package',
    jobs,
    calls: jobs,
    inFlight,
    op: (i) => queue.enqueue({ workspaceId: wsOf(i), type: 'email.send', payload: PAYLOAD, idempotencyKey: `k${i}` }),
  };
}

/** The reviewed implementation: four awaited commands per job. */
async function separateCommands({ redis, jobs }, inFlight) {
  return {
    group: 'hand-written',
    jobs,
    calls: jobs,
    inFlight,
    op: async (i) => {
      const jobId = randomUUID();
      const ws = wsOf(i);
      const now = String(Date.now());
      await redis.set(`ws:${ws}:idem:k${i}`, jobId, 'EX', 86400, 'NX');
      await redis.hset(`job:${jobId}`, ...jobFields(jobId, ws, now));
      await redis.hset(`ws:${ws}:job:${jobId}`, ...jobFields(jobId, ws, now));
      await redis.rpush('queue:bench', jobId);
    },
  };
}

async function bullmqAdd({ jobs, bullmq }, inFlight) {
  return { group: 'bullmq', jobs, calls: jobs, inFlight, op: () => bullmq.add('email.send', PAYLOAD) };
}

function batchOf(call, size, make) {
  return Array.from({ length: size }, (_, k) => make(call * size + k));
}

/** Jobs for the update and read scenarios, written before the measured run starts. */
async function seedJobs(queue, jobs) {
  const ids = [];
  for (let call = 0; call * 100 < jobs; call++) {
    const batch = batchOf(call, 100, (i) => ({ workspaceId: wsOf(i), type: 'email.send', payload: PAYLOAD }));
    const results = await queue.enqueueMany(batch);
    ids.push(...results.map((r) => r.jobId));
  }
  return ids;
}

module.exports = { scenarios, PAYLOAD, PAYLOAD_JSON, jobFields, wsOf, pkgQueue };
