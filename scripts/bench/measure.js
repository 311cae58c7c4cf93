// Timing and server-side accounting shared by every scenario.

/** Runs `op(i)` for i in [0, n) with `inFlight` calls outstanding; returns per-call latencies (ns). */
async function drive(n, inFlight, op) {
  const latencies = new Float64Array(n);
  let next = 0;
  async function lane() {
    while (next < n) {
      const i = next++;
      const started = process.hrtime.bigint();
      await op(i);
      latencies[i] = Number(process.hrtime.bigint() - started);
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
  return latencies;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** CPU the server spent (user + sys, µs), and the µs INFO commandstats booked per command. */
async function serverCounters(redis) {
  const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')]);
  const seconds = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(cpu)[1]);
  const commands = {};
  for (const [, name, calls, usec] of stats.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    commands[name] = { calls: Number(calls), usec: Number(usec) };
  }
  return { cpuUs: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6, commands };
}

/** Measures one run: jobs/s, latency percentiles per call, server µs per job. */
async function measure(redis, { jobs, calls, inFlight, op }) {
  await redis.config('RESETSTAT');
  const before = await serverCounters(redis);
  const started = process.hrtime.bigint();
  const latencies = await drive(calls, inFlight, op);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = await serverCounters(redis);
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  // EVALSHA's usec covers the whole script; the commands it ran are booked again under their own
  // names, so only the script call is read, per call: the figure the lean-script target is about.
  const evalsha = after.commands.evalsha;
  const evalshaCalls = (evalsha?.calls ?? 0) - (before.commands.evalsha?.calls ?? 0);
  const evalshaUs = (evalsha?.usec ?? 0) - (before.commands.evalsha?.usec ?? 0);
  return {
    jobsPerSecond: jobs / seconds,
    p50Ms: percentile(sorted, 50) / 1e6,
    p99Ms: percentile(sorted, 99) / 1e6,
    serverCpuUsPerJob: (after.cpuUs - before.cpuUs) / jobs,
    scriptUsPerCall: evalshaCalls > 0 ? evalshaUs / evalshaCalls : null,
  };
}

/** used_memory after a full collection of what the allocator can give back. */
async function usedMemory(redis) {
  await redis.call('MEMORY', 'PURGE');
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
}

function median(runs, pick) {
  const sorted = [...runs].sort((a, b) => pick(a) - pick(b));
  return sorted[Math.floor(sorted.length / 2)];
}

module.exports = { drive, measure, median, usedMemory };
