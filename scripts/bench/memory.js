// Bytes per job: used_memory before and after N jobs, for the package in each kind of stage, for
// the same keys written by hand (the layout's own cost), and for bullmq, with the same payload. Two
// payloads: one under Redis' 64-byte listpack limit for hash values, one over it.
const { pkgQueue, PAYLOAD, TYPE, wsOf } = require('./scenarios');
const { jobFields, FINGERPRINT, IDEMPOTENCY_TTL } = require('./bare');
const { usedMemory } = require('./measure');

const SMALL_PAYLOAD = { to: 'ada@example.com', n: 1 };

async function perJob(redis, n, write) {
  // SYNC: Valkey 8+ flushes lazily by default (lazyfree-lazy-user-flush yes), so the memory of the
  // last writer would still be freeing while this one is measured.
  await redis.flushall('SYNC');
  const before = await usedMemory(redis);
  await write();
  return ((await usedMemory(redis)) - before) / n;
}

async function memoryFor(redis, bullmq, n, payload) {
  const batches = Array.from({ length: Math.ceil(n / 100) }, (_, call) =>
    Array.from({ length: 100 }, (_, k) => call * 100 + k),
  );
  const viaPackage = (stage) => async () => {
    const queue = pkgQueue(redis, stage);
    for (const batch of batches) {
      await queue.enqueueMany(batch.map((i) => ({ workspaceId: wsOf(i), type: TYPE, payload, idempotencyKey: `k${i}` })));
    }
  };
  const byHand = async () => {
    const now = String(Date.now());
    for (const batch of batches) {
      const pipeline = redis.pipeline();
      for (const i of batch) {
        const jobId = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
        const fields = jobFields(jobId, wsOf(i), TYPE, JSON.stringify(payload), now, `k${i}`);
        pipeline.hset(`job:${jobId}`, ...fields);
        pipeline.hset(`ws:${wsOf(i)}:job:${jobId}`, ...fields);
        pipeline.rpush('queue:bench', jobId);
        pipeline.zadd(`ws:${wsOf(i)}:jobs`, now, jobId);
        pipeline.set(`ws:${wsOf(i)}:idem:k${i}`, `${FINGERPRINT}:${jobId}`, 'EX', IDEMPOTENCY_TTL);
      }
      await pipeline.exec();
    }
  };
  const viaBullmq = async () => {
    for (const batch of batches) await bullmq.addBulk(batch.map(() => ({ name: TYPE, data: payload })));
  };
  return {
    'package, off': await perJob(redis, n, viaPackage('off')),
    'package, dualwrite': await perJob(redis, n, viaPackage('dualwrite')),
    'package, complete': await perJob(redis, n, viaPackage('complete')),
    'same keys by hand (dualwrite layout)': await perJob(redis, n, byHand),
    bullmq: await perJob(redis, n, viaBullmq),
  };
}

/** { '<bytes> B payload': { writer: bytes per job } } for both payloads. */
async function memoryPerJob(redis, bullmq, n) {
  const out = {};
  for (const payload of [PAYLOAD, SMALL_PAYLOAD]) {
    out[`${Buffer.byteLength(JSON.stringify(payload))} B payload`] = await memoryFor(redis, bullmq, n, payload);
  }
  return out;
}

module.exports = { memoryPerJob };
