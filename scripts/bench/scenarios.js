// Each scenario prepares Redis and returns what one measured run does. Every writer gets the same
// payload, so the figures compare the write paths, not the data.
const { randomUUID } = require('node:crypto');
const { DualWriteQueue, Migration } = require('../../dist');
const { loadBare, bareJob, jobFields, IDEMPOTENCY_TTL } = require('./bare');
const { redisBenchmark } = require('./redis-benchmark');

const PAYLOAD = { to: 'user@example.com', template: 'signup', vars: { name: 'Ada', plan: 'pro' } };
const PAYLOAD_JSON = JSON.stringify(PAYLOAD);
const TYPE = 'email.send';
const WORKSPACES = 50;
const wsOf = (i) => `ws${i % WORKSPACES}`;

/** The package, as a service would call it; 'managed' reads the stage from the record. */
function pkgQueue(redis, stage) {
  return new DualWriteQueue({ redis, queueName: 'bench', stage, metrics: false });
}

/**
 * A queue in `stage`: static mode, or ('managed') a managed queue over a stage record created at
 * dualwrite, as `redis-dual-write stage init dualwrite` would.
 */
async function readyQueue(redis, mode) {
  if (mode === 'managed') {
    await new Migration({ redis, stage: 'managed', queueName: 'bench', metrics: false }).initStage('dualwrite', { reason: 'bench' });
  }
  const queue = pkgQueue(redis, mode);
  await queue.ready();
  return queue;
}

// In the order they run in each round: each target's two scenarios close together, so a noisy
// neighbour on a shared machine is more likely to hit both.
const scenarios = {
  'enqueue x64': (ctx) => enqueueScenario(ctx, 'dualwrite', 64),
  'bare 5-write script x64': (ctx) => bareEnqueue(ctx, 64),
  'enqueue managed x64': (ctx) => enqueueScenario(ctx, 'managed', 64),
  'bullmq add x64': (ctx) => bullmqAdd(ctx, 64),
  'enqueue x1': (ctx) => enqueueScenario(ctx, 'dualwrite', 1),
  'bare 5-write script x1': (ctx) => bareEnqueue(ctx, 1),
  'enqueue managed x1': (ctx) => enqueueScenario(ctx, 'managed', 1),
  'bullmq add x1': (ctx) => bullmqAdd(ctx, 1),
  'enqueueMany x100 (4 in flight)': (ctx) => enqueueManyScenario(ctx, 4),
  'bare batch script x100 (4 in flight)': (ctx) => bareBatch(ctx, 4),
  'bullmq addBulk x100 (4 in flight)': (ctx) => addBulkScenario(ctx, 4),
  'enqueueMany x100': (ctx) => enqueueManyScenario(ctx, 1),
  'bullmq addBulk x100': (ctx) => addBulkScenario(ctx, 1),
  'updateStatus x64': async ({ redis, jobs }) => {
    const queue = pkgQueue(redis, 'live');
    const ids = await seedJobs(queue, jobs);
    return { group: 'package', jobs, calls: jobs, inFlight: 64, op: (i) => queue.updateStatus({ workspaceId: wsOf(i), jobId: ids[i], status: 'running' }) };
  },
  'bare updateStatus script x64': async ({ redis, jobs }) => {
    const ids = await seedJobs(pkgQueue(redis, 'live'), jobs);
    const { updateStatus } = await loadBare(redis);
    return {
      group: 'bare',
      jobs,
      calls: jobs,
      inFlight: 64,
      op: (i) => redis.evalsha(updateStatus, 4, `job:${ids[i]}`, `ws:${wsOf(i)}:job:${ids[i]}`, 'queue:bench:claims', 'queue:bench', 'running', String(Date.now()), ids[i]),
    };
  },
  'getJob live x64': async ({ redis, jobs }) => {
    const queue = pkgQueue(redis, 'live');
    const ids = await seedJobs(queue, jobs);
    return { group: 'package', jobs, calls: jobs, inFlight: 64, op: (i) => queue.getJob({ workspaceId: wsOf(i), jobId: ids[i] }) };
  },
  'bare getJob script x64': async ({ redis, jobs }) => {
    const ids = await seedJobs(pkgQueue(redis, 'live'), jobs);
    const { getJob } = await loadBare(redis);
    return { group: 'bare', jobs, calls: jobs, inFlight: 64, op: (i) => redis.evalsha(getJob, 2, `ws:${wsOf(i)}:job:${ids[i]}`, `job:${ids[i]}`) };
  },
  'redis-benchmark enqueue (pipelined)': (ctx) => redisBenchmarkScenario(ctx, 'dualwrite'),
  'redis-benchmark enqueue managed (pipelined)': (ctx) => redisBenchmarkScenario(ctx, 'managed'),
  'separate commands x1': (ctx) => separateCommands(ctx, 1),
  'separate commands x64': (ctx) => separateCommands(ctx, 64),
  'MULTI/EXEC x64': async ({ redis, jobs }) => ({
    group: 'hand-written',
    jobs,
    calls: jobs,
    inFlight: 64,
    op: (i) => {
      const { jobId, ws, idemKey, idemValue } = bareJob(i, wsOf);
      const fields = jobFields(jobId, ws, TYPE, PAYLOAD_JSON, String(Date.now()), `k${i}`);
      return redis.multi()
        .set(idemKey, idemValue, 'EX', IDEMPOTENCY_TTL, 'NX')
        .hset(`job:${jobId}`, ...fields)
        .hset(`ws:${ws}:job:${jobId}`, ...fields)
        .rpush('queue:bench', jobId)
        .exec();
    },
  }),
};

async function enqueueScenario({ redis, jobs }, mode, inFlight) {
  const queue = await readyQueue(redis, mode);
  return {
    group: 'package',
    jobs,
    calls: jobs,
    inFlight,
    op: (i) => queue.enqueue({ workspaceId: wsOf(i), type: TYPE, payload: PAYLOAD, idempotencyKey: `k${i}` }),
  };
}

/** The bare script: the layout's limit for one enqueue. */
async function bareEnqueue({ redis, jobs }, inFlight) {
  const { enqueue } = await loadBare(redis);
  return {
    group: 'bare',
    jobs,
    calls: jobs,
    inFlight,
    op: (i) => {
      const { jobId, ws, idemKey, idemValue } = bareJob(i, wsOf);
      return redis.evalsha(enqueue, 5, idemKey, `job:${jobId}`, `ws:${ws}:job:${jobId}`, 'queue:bench', `ws:${ws}:jobs`,
        jobId, ws, TYPE, PAYLOAD_JSON, String(Date.now()), `k${i}`, idemValue, IDEMPOTENCY_TTL);
    },
  };
}

/** Batches of 100; with one batch in flight the client and the server take turns. */
async function enqueueManyScenario({ redis, jobs }, inFlight) {
  const queue = await readyQueue(redis, 'dualwrite');
  return {
    group: 'package',
    jobs,
    calls: Math.ceil(jobs / 100),
    inFlight,
    op: (call) => queue.enqueueMany(batchOf(call, 100, (i) => ({ workspaceId: wsOf(i), type: TYPE, payload: PAYLOAD, idempotencyKey: `k${i}` }))),
  };
}

async function bareBatch({ redis, jobs }, inFlight) {
  const { enqueueBatch } = await loadBare(redis);
  return {
    group: 'bare',
    jobs,
    calls: Math.ceil(jobs / 100),
    inFlight,
    op: (call) => {
      const keys = ['queue:bench'];
      const args = [String(Date.now()), IDEMPOTENCY_TTL];
      for (const i of batchOf(call, 100, (k) => k)) {
        const { jobId, ws, idemKey, idemValue } = bareJob(i, wsOf);
        keys.push(idemKey, `job:${jobId}`, `ws:${ws}:job:${jobId}`, `ws:${ws}:jobs`);
        args.push(jobId, ws, TYPE, PAYLOAD_JSON, `k${i}`, idemValue);
      }
      return redis.evalsha(enqueueBatch, keys.length, ...keys, ...args);
    },
  };
}

async function addBulkScenario({ jobs, bullmq }, inFlight) {
  return {
    group: 'bullmq',
    jobs,
    calls: Math.ceil(jobs / 100),
    inFlight,
    op: (call) => bullmq.addBulk(batchOf(call, 100, () => ({ name: TYPE, data: PAYLOAD }))),
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
      const { jobId, ws, idemKey, idemValue } = bareJob(i, wsOf);
      const fields = jobFields(jobId, ws, TYPE, PAYLOAD_JSON, String(Date.now()), `k${i}`);
      await redis.set(idemKey, idemValue, 'EX', IDEMPOTENCY_TTL, 'NX');
      await redis.hset(`job:${jobId}`, ...fields);
      await redis.hset(`ws:${ws}:job:${jobId}`, ...fields);
      await redis.rpush('queue:bench', jobId);
    },
  };
}

async function bullmqAdd({ jobs, bullmq }, inFlight) {
  return { group: 'bullmq', jobs, calls: jobs, inFlight, op: () => bullmq.add(TYPE, PAYLOAD) };
}

/** The package's own enqueue call, sent by redis-benchmark: the server's limit for it, no Node client. */
async function redisBenchmarkScenario({ redis, jobs, url }, mode) {
  const queue = await readyQueue(redis, mode);
  return redisBenchmark({ redis, url, jobs, enqueueOne: (jobId, idempotencyKey) =>
    queue.enqueue({ workspaceId: 'w', type: TYPE, payload: PAYLOAD, jobId, idempotencyKey }) });
}

function batchOf(call, size, make) {
  return Array.from({ length: size }, (_, k) => make(call * size + k));
}

/** Jobs for the update and read scenarios, written before the measured run starts. */
async function seedJobs(queue, jobs) {
  const ids = [];
  for (let call = 0; call * 100 < jobs; call++) {
    const batch = batchOf(call, 100, (i) => ({ workspaceId: wsOf(i), type: TYPE, payload: PAYLOAD }));
    const results = await queue.enqueueMany(batch);
    ids.push(...results.map((r) => r.jobId));
  }
  return ids;
}

module.exports = { scenarios, PAYLOAD, TYPE, wsOf, pkgQueue, readyQueue };
