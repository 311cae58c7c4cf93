// Backfill and verify rates over legacy jobs written by hand.
const pkg = require('../../dist');
const { jobFields } = require('./bare');
const { PAYLOAD, TYPE, wsOf } = require('./scenarios');

async function lifecycleRates(redis, n) {
  await redis.flushall('SYNC');
  const now = String(Date.now());
  for (let start = 0; start < n; start += 500) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(n, start + 500); i++) pipeline.hset(`job:legacy-${i}`, ...jobFields(`legacy-${i}`, wsOf(i), TYPE, JSON.stringify(PAYLOAD), now));
    await pipeline.exec();
  }
  const migration = new pkg.Migration({ redis, stage: 'dualwrite', queueName: 'bench', metrics: false });
  const rate = async (work) => {
    const started = process.hrtime.bigint();
    await work();
    return { group: 'package', jobsPerSecond: n / (Number(process.hrtime.bigint() - started) / 1e9), p50Ms: null, p99Ms: null, serverCpuUsPerJob: null, scriptUsPerCall: null };
  };
  return {
    'backfill': await rate(() => migration.backfill()),
    'verify': await rate(() => migration.verify()),
  };
}

module.exports = { lifecycleRates };
