// The targets of issue 11: each a ratio of two scenarios measured in the same round, taken per
// round, and the median over the rounds. Ratios only compare figures of one run.
const { median } = require('./measure');

const jobsPerSecond = (r) => r.jobsPerSecond;
const scriptUs = (r) => r.scriptUsPerCall;
const scriptP50 = (r) => r.scriptP50Us;

/** [what, our scenario, the baseline scenario, the figure compared, direction, wanted]. */
const TARGETS = [
  ['enqueue x64 jobs/s vs bare 5-write script x64 (static)', 'enqueue x64', 'bare 5-write script x64', jobsPerSecond, 'at least', 0.8],
  ['enqueue x64 jobs/s vs bare 5-write script x64 (managed)', 'enqueue managed x64', 'bare 5-write script x64', jobsPerSecond, 'at least', 0.8],
  ['enqueue x1 jobs/s vs bare 5-write script x1 (static)', 'enqueue x1', 'bare 5-write script x1', jobsPerSecond, 'at least', 0.8],
  ['enqueue x1 jobs/s vs bare 5-write script x1 (managed)', 'enqueue managed x1', 'bare 5-write script x1', jobsPerSecond, 'at least', 0.8],
  ['server µs per enqueue call vs bare 5-write script (static, x64)', 'enqueue x64', 'bare 5-write script x64', scriptUs, 'at most', 1.2],
  ['server µs per enqueue call vs bare 5-write script (managed, x64)', 'enqueue managed x64', 'bare 5-write script x64', scriptUs, 'at most', 1.25],
  ['enqueue x64 jobs/s vs bullmq add x64', 'enqueue x64', 'bullmq add x64', jobsPerSecond, 'at least', 1.1],
  ['enqueueMany x100 (4 in flight) jobs/s vs bare 5-write script x64', 'enqueueMany x100 (4 in flight)', 'bare 5-write script x64', jobsPerSecond, 'at least', 1.5],
  ['enqueueMany x100 vs bullmq addBulk x100 (1 batch in flight)', 'enqueueMany x100', 'bullmq addBulk x100', jobsPerSecond, 'at least', 1.5],
  ['enqueueMany x100 vs bullmq addBulk x100 (4 batches in flight)', 'enqueueMany x100 (4 in flight)', 'bullmq addBulk x100 (4 in flight)', jobsPerSecond, 'at least', 1.5],
  ['server µs per updateStatus call vs bare updateStatus script (live)', 'updateStatus x64', 'bare updateStatus script x64', scriptUs, 'at most', 1.2],
  ['server µs per getJob call vs bare getJob script (live)', 'getJob live x64', 'bare getJob script x64', scriptUs, 'at most', 1.2],
];

/** Memory per job is measured once (it moves by bytes, not by noise): its targets have one value. */
const MEMORY_WANTED = 1.05;

const metOf = (direction, wanted, value) => (value === null ? null : direction === 'at least' ? value >= wanted : value <= wanted);

/**
 * Every target as { what, direction, wanted, rounds, median, met }: `rounds` holds the ratio of
 * each round (null where a scenario was not run), `median` their median.
 * `rounds` (per scenario) is { name: [the result of round 1, round 2, ...] }.
 */
function targetRows(rounds, memory) {
  const rows = TARGETS.map(([what, ours, base, pick, direction, wanted]) => ratioRow(rounds, what, ours, base, pick, direction, wanted));
  for (const [payload, bytes] of Object.entries(memory)) {
    const mine = bytes['package, dualwrite'];
    const layout = bytes['same keys by hand (dualwrite layout)'];
    const ratio = mine && layout ? mine / layout : null;
    rows.push({ what: `memory per job (dualwrite, ${payload}) vs the same keys by hand`, direction: 'at most', wanted: MEMORY_WANTED, rounds: [ratio], median: ratio });
  }
  return rows.map((row) => ({ ...row, met: metOf(row.direction, row.wanted, row.median) }));
}

function ratioRow(rounds, what, ours, base, pick, direction, wanted) {
  const mine = rounds[ours] ?? [];
  const theirs = rounds[base] ?? [];
  const values = mine.map((r, i) => (theirs[i] && pick(r) && pick(theirs[i]) ? pick(r) / pick(theirs[i]) : null));
  const value = median(values);
  return { what, direction, wanted, rounds: values, median: value, met: metOf(direction, wanted, value) };
}

/**
 * The server-time targets again, each call's time taken as the median call's (INFO latencystats)
 * instead of commandstats' mean: a cross-check that a busy machine moves far less. Not the targets.
 */
function medianCallRows(rounds) {
  return TARGETS.filter(([, , , pick]) => pick === scriptUs)
    .map(([what, ours, base, , direction, wanted]) => ratioRow(rounds, what, ours, base, scriptP50, direction, wanted));
}

/**
 * What reading the stage record costs a managed enqueue: managed minus static server µs per call,
 * per round, through the Node client (x64) and through redis-benchmark (pipelined).
 */
function stageReadRows(rounds) {
  const pairs = [
    ['enqueue x64 (Node client)', 'enqueue managed x64', 'enqueue x64'],
    ['enqueue, redis-benchmark pipelined', 'redis-benchmark enqueue managed (pipelined)', 'redis-benchmark enqueue (pipelined)'],
  ];
  return pairs
    .filter(([, managed, stat]) => rounds[managed] && rounds[stat])
    .flatMap(([what, managed, stat]) => [['mean call (commandstats)', scriptUs], ['median call (latencystats)', scriptP50]].map(([how, pick]) => {
      const values = rounds[managed].map((r, i) => (pick(r) != null && rounds[stat][i] && pick(rounds[stat][i]) != null ? pick(r) - pick(rounds[stat][i]) : null));
      return { what: `${what}, ${how}`, rounds: values, median: median(values) };
    }));
}

module.exports = { targetRows, medianCallRows, stageReadRows, metOf };
