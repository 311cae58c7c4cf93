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

// The commands that run a script; INFO commandstats books the whole script under the one called.
const SCRIPT_COMMANDS = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro'];

/**
 * Measures one run: jobs/s, latency percentiles per call, server CPU µs per job, and the µs
 * commandstats booked per script call. A plan either has `op` (driven here `calls` times with
 * `inFlight` outstanding) or `run` (an outside client: it returns its own jobs/s and latencies).
 */
async function measure(redis, plan) {
  await redis.config('RESETSTAT');
  const before = await serverCounters(redis);
  const started = process.hrtime.bigint();
  let timing;
  if (plan.run) {
    timing = await plan.run();
  } else {
    const latencies = await drive(plan.calls, plan.inFlight, plan.op);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const sorted = Array.from(latencies).sort((a, b) => a - b);
    timing = { jobsPerSecond: plan.jobs / seconds, p50Ms: percentile(sorted, 50) / 1e6, p99Ms: percentile(sorted, 99) / 1e6 };
  }
  const after = await serverCounters(redis);
  // A script's usec covers the whole script; the commands it ran are booked again under their own
  // names, so only the script call is read, per call: the figure the server-time targets are about.
  const booked = (counters, field) => SCRIPT_COMMANDS.reduce((sum, name) => sum + (counters.commands[name]?.[field] ?? 0), 0);
  const scriptCalls = booked(after, 'calls') - booked(before, 'calls');
  const scriptUs = booked(after, 'usec') - booked(before, 'usec');
  return {
    ...timing,
    serverCpuUsPerJob: (after.cpuUs - before.cpuUs) / plan.jobs,
    scriptUsPerCall: scriptCalls > 0 ? scriptUs / scriptCalls : null,
    scriptP50Us: await medianScriptCall(redis, after, before),
  };
}

/**
 * The median script call's µs, from INFO latencystats (Redis 7+ and Valkey track every command's
 * latency by default; RESETSTAT clears it), or null without it. commandstats' mean bills a call
 * for the time the kernel kept the server off the CPU; the median call is rarely one of those, so
 * it holds still on a busy machine. Percentiles do not add up, so this is the script command the
 * run called most.
 */
async function medianScriptCall(redis, after, before) {
  const calls = (name) => (after.commands[name]?.calls ?? 0) - (before.commands[name]?.calls ?? 0);
  const [most] = SCRIPT_COMMANDS.filter((name) => calls(name) > 0).sort((a, b) => calls(b) - calls(a));
  if (!most) return null;
  const stats = String(await redis.info('latencystats').catch(() => ''));
  const p50 = new RegExp(`latency_percentiles_usec_${most}:p50=([0-9.]+)`).exec(stats);
  return p50 ? Number(p50[1]) : null;
}

/** used_memory after a full collection of what the allocator can give back. */
async function usedMemory(redis) {
  await redis.call('MEMORY', 'PURGE');
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
}

/** The median of some numbers (nulls left out; the mean of the middle two for an even count), or null. */
function median(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2;
}

module.exports = { drive, measure, median, usedMemory };
