// The server's own limit for our enqueue script: redis-benchmark sends EVALSHA pipelined, with no
// Node client in the way. Skipped when redis-benchmark is not on PATH.
const { spawnSync } = require('node:child_process');
const { loadScripts } = require('../../dist/scripts/manifest');
const { PAYLOAD_JSON } = require('./scenarios');

async function redisBenchmark(url, jobs) {
  const probe = spawnSync('redis-benchmark', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    console.log('redis-benchmark is not on PATH: the server-limit row is left out');
    return undefined;
  }
  const script = loadScripts().get('enqueue_dual.v3');
  const args = [
    '-h', url.hostname, '-p', url.port, '-n', String(jobs), '-c', '64', '-P', '16', '-r', '1000000000', '--csv',
    'EVALSHA', script.sha1, '5',
    'ws:w:idem:__rand_int__', 'job:__rand_int__', 'ws:w:job:__rand_int__', 'queue:bench', 'ws:w:jobs',
    '__rand_int__', 'w', 'email.send', PAYLOAD_JSON, 'ab', '86400', '1', '1', '__rand_int__',
  ];
  spawnSync('redis-cli', ['-h', url.hostname, '-p', url.port, 'SCRIPT', 'LOAD', script.body]);
  const run = spawnSync('redis-benchmark', args, { encoding: 'utf8' });
  const row = run.stdout.split('\n').find((line) => line.startsWith('"EVALSHA'));
  if (!row) throw new Error(`redis-benchmark printed no result:\n${run.stdout}${run.stderr}`);
  // The test name holds the payload's commas: read the seven figures from the end of the row.
  const [rps, , , p50, , p99] = row.split(',').slice(-7).map((cell) => cell.replace(/"/g, ''));
  return { group: 'server limit', jobsPerSecond: Number(rps), p50Ms: Number(p50), p99Ms: Number(p99), serverCpuUsPerJob: null, scriptUsPerCall: null };
}

module.exports = { redisBenchmark };
