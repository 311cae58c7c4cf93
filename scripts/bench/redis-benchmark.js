// The server's own limit for the package's enqueue: redis-benchmark sends the very command the
// package sends, pipelined, with no Node client in the way. The command is taken from one real
// enqueue (MONITOR), so it follows the script's keys and arguments as they change. Left out when
// redis-benchmark is not on PATH.
const { spawnSync } = require('node:child_process');

const JOB_ID = 'benchjobidmark';
const IDEMPOTENCY_KEY = 'benchidemmark';

let onPath;
function available() {
  if (onPath === undefined) {
    onPath = !spawnSync('redis-benchmark', ['--version'], { encoding: 'utf8' }).error;
    if (!onPath) console.log('redis-benchmark is not on PATH: its rows are left out');
  }
  return onPath;
}

/** The command one enqueue sends, as MONITOR saw it. */
async function capture(redis, enqueueOne) {
  const monitor = await redis.monitor();
  const seen = [];
  monitor.on('monitor', (_time, args) => seen.push(args));
  await enqueueOne(JOB_ID, IDEMPOTENCY_KEY);
  // MONITOR reports a command as it runs; a PING after the enqueue comes back after that report.
  await redis.ping();
  await new Promise((resolve) => setTimeout(resolve, 50));
  monitor.disconnect();
  const command = seen.find((args) => args.some((arg) => String(arg).includes(JOB_ID)));
  if (!command) throw new Error('MONITOR saw no enqueue command');
  return command.map(String);
}

/**
 * A measured run's plan for measure(): `run` makes redis-benchmark send `jobs` enqueues, 64
 * connections with 16 each in flight. Every jobId and idempotency key is random (__rand_int__), so
 * each call creates a job.
 */
async function redisBenchmark({ redis, url, jobs, enqueueOne }) {
  if (!available()) return undefined;
  const command = (await capture(redis, enqueueOne)).map((arg) =>
    arg.split(JOB_ID).join('__rand_int__').split(IDEMPOTENCY_KEY).join('__rand_int__'));
  const args = ['-h', url.hostname, '-p', url.port, '-n', String(jobs), '-c', '64', '-P', '16', '-r', '1000000000', '--csv', ...command];
  return {
    group: 'server limit',
    jobs,
    run: async () => {
      const run = spawnSync('redis-benchmark', args, { encoding: 'utf8' });
      const row = run.stdout.split('\n').find((line) => /^"(evalsha|eval|fcall)/i.test(line));
      if (!row) throw new Error(`redis-benchmark printed no result:\n${run.stdout}${run.stderr}`);
      // The test name holds the payload's commas: read the seven figures from the end of the row.
      const [rps, , , p50, , p99] = row.split(',').slice(-7).map((cell) => Number(cell.replace(/"/g, '')));
      return { jobsPerSecond: rps, p50Ms: p50, p99Ms: p99 };
    },
  };
}

module.exports = { redisBenchmark };
