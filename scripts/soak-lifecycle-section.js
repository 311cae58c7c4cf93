// The section of docs/RELIABILITY.md for scenario 10 (worker lifecycle under retention): what ran,
// what happened to the jobs, and memory over time, from the figures and samples its test recorded
// (test/faults/lifecycle-soak.test.ts). scripts/soak.js calls it.

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const percent = (fraction) => `±${(fraction * 100).toFixed(2)}%`;
const round = (value, digits = 1) => Number(value).toFixed(digits);

/** At most `rows` samples, evenly spaced, always the first and the last. */
function thin(series, rows) {
  if (series.length <= rows) return series;
  const step = (series.length - 1) / (rows - 1);
  return Array.from({ length: rows }, (_, i) => series[Math.round(i * step)]);
}

/** What the end, histograms reset, says against the start. */
function leftOver(m) {
  const more = m.usedMemoryAt.finalWithoutHistograms - m.usedMemoryAt.baseline;
  if (more <= 0) return 'no more than before the first job: nothing the jobs used stayed behind';
  return `${kb(more)} more than before the first job, with the connections' buffers at ${kb(m.series[m.series.length - 1].clientsBytes)}`;
}

function lifecycleSection(row) {
  const f = row.figures;
  const m = row.memory;
  if (!f || !m) return `## ${row.scenario}. ${row.name}\n\nNo figures recorded: its test failed before it recorded them.\n`;
  const halves = (pick) => [pick.firstHalf, pick.secondHalf];
  const [usedFirst, usedSecond] = halves(m.usedMemory);
  const [keysFirst, keysSecond] = halves(m.keys);
  const phase = (sample) => (sample.atMs < m.loadFromMs ? 'before' : sample.atMs <= m.loadToMs ? 'load' : 'drain, sweep');
  const seriesRows = thin(m.series, 30).map(
    (s) =>
      `| ${round(s.atMs / 1000)} | ${phase(s)} | ${kb(s.usedMemory)} | ${kb(s.clientsBytes)} | ${s.keys} | ${s.indexEntries} | ${s.expiriesEntries} | ${s.expiriesBytes} |`,
  );
  return `## ${row.scenario}. Worker lifecycle under retention

What ran (\`${row.command}\`): ${f.loadSeconds} s of load, ${f.perSecond} enqueue calls a second
(${f.requests} requests, some sent again), idempotency keys that live ${f.idempotencyTtlSeconds} s;
${f.workers} workers in ${f.processes} processes, each claim held ${f.visibilityTimeoutMs} ms and extended every
${f.heartbeatMs} ms while the handler runs (5-1000 ms), a retry budget of ${f.maxAttempts} attempts read from
\`attempts\`, every ${f.crashEvery}th claim's worker killed holding its job and every ${f.stallEvery}th stalled past
its deadline; in each worker
process \`recoverStalled\` every ${f.recoverEveryMs} ms and \`maintain()\` every ${f.maintainEveryMs} ms; retention ${f.retentionSucceededSeconds} s for
succeeded, ${f.retentionFailedSeconds} s for failed and ${f.retentionCancelledSeconds} s for cancelled jobs, set once in the managed
stage record. In the load's first half the operator moved the fleet from \`dualwrite\` to \`shadow\`
(after a backfill) and to \`live\` (after a verify taken under load, which came back clean with
${f.pendingMaintenanceUnderLoad} expired entries pending maintenance). After the load: the drain, the
records checked against what the workers were told, a wait for the last expiry and the last key,
and \`maintain()\` until nothing was due. ${f.seconds} s in all.

| what happened | count |
| --- | ---: |
| jobs made | ${f.jobs} |
| replays answered with the job their key names (nothing written) | ${f.replaysSameJob} |
| of those, naming a job retention had already removed | ${f.replaysOfRemovedJob} |
| replays sent after their key expired, which made a new job (a new request, by design) | ${f.replaysNewJob} |
| jobs made twice while their key lived | 0 |
| jobs cancelled while waiting (cancels that lost to a claim) | ${f.cancelled} (${f.cancelsTooLate}) |
| claims | ${f.claims} |
| claim extensions (heartbeats) | ${f.extends} |
| workers killed holding a job | ${f.crashes} |
| workers stalled past their deadline: refused afterwards / finished before recovery | ${f.staleRefused} / ${f.staleAccepted} |
| healthy workers whose heartbeat came too late (refused, not run twice) | ${f.heartbeatsLate} |
| jobs \`recoverStalled\` put back on the queue | ${f.recovered} |
| retries: running job handed back / failed, then requeued / requeue after retention removed it | ${f.handedBack} / ${f.failedThenRequeued} / ${f.requeuesTooLate} |
| jobs that succeeded / failed with their budget spent | ${f.succeeded} / ${f.failed} |
| succeeded jobs that still carry an earlier attempt's \`error\` | ${f.succeededWithEarlierError} |
| finished jobs checked after the drain: still there as told / removed at their expiry | ${f.recordsCheckedPresent} / ${f.recordsCheckedRemoved} |
| jobs removed by retention and swept (in the final sweep) | ${f.retentionRemoved} (${f.retentionRemovedInFinalSweep}) |
| claims that overlapped an earlier claim of the job, jobs ended twice or under a stale claim | ${f.overlaps} |

Every job ended exactly once, under its latest claim, and \`attempts\` equalled its claims. No claim
began before the previous holder's deadline unless that holder had handed the job back, and none
before the previous holder's last extension (claim times and deadlines are the server's). After the
final sweep verify was clean with nothing pending, no invariant was broken, and the database held
only the stage record, its history and the instances' heartbeats.

**Memory.** Sampled every ${m.everyMs} ms on its own connection (${m.series.length} samples): INFO
\`used_memory\` and \`mem_clients_normal\`, DBSIZE, the workspace indexes' entries, and the expiries
set's entries and bytes (\`MEMORY USAGE ... SAMPLES 0\`). The load ran from ${round(m.loadFromMs / 1000)} s
to ${round(m.loadToMs / 1000)} s; its first half filled the retention and idempotency windows, its second
half is the steady state.

| | used_memory | keys (DBSIZE) | index entries | expiries entries | expiries bytes |
| --- | ---: | ---: | ---: | ---: | ---: |
| first half, mean | ${kb(usedFirst.mean)} | ${round(keysFirst.mean)} | | | |
| second half, mean | ${kb(usedSecond.mean)} | ${round(keysSecond.mean)} | ${round(m.indexEntries.mean)} | ${round(m.expiriesEntries.mean)} | ${Math.round(m.expiriesBytes.mean)} |
| second half, min - max | ${kb(usedSecond.min)} - ${kb(usedSecond.max)} | ${keysSecond.min} - ${keysSecond.max} | ${m.indexEntries.min} - ${m.indexEntries.max} | ${m.expiriesEntries.min} - ${m.expiriesEntries.max} | ${m.expiriesBytes.min} - ${m.expiriesBytes.max} |
| second half, farthest sample from the mean | ${percent(usedSecond.maxDeviation)} | ${percent(keysSecond.maxDeviation)} | ${percent(m.indexEntries.maxDeviation)} | ${percent(m.expiriesEntries.maxDeviation)} | ${percent(m.expiriesBytes.maxDeviation)} |
| second half, trend (least squares) | ${round(usedSecond.slopePerSecond, 0)} B/s | ${round(keysSecond.slopePerSecond, 2)}/s | ${round(m.indexEntries.slopePerSecond, 2)}/s | ${round(m.expiriesEntries.slopePerSecond, 2)}/s | ${round(m.expiriesBytes.slopePerSecond, 1)} B/s |

The test asserts \`used_memory\` within ±5% of its mean over the second half, and, finer than bytes,
that the keys, index entries and expiries entries drift by less than 10% of their mean over it (a
leak of one small entry per job would hide in ±5% of \`used_memory\`, not in the counts). At scale 1
(\`npm test\`) the load lasts 2.5 s, too short for a steady state: there the leak check is the end
state, where no key of any job may remain.

\`used_memory\` holds more than the jobs: the connections' buffers, and a latency histogram per
command name Redis has run (\`latency-tracking\`, on by default since Redis 7.0), a one-time cost
per name that \`CONFIG RESETSTAT\` frees. So the first half climbs as the run's commands are first
seen (the operator's backfill and verify, which use commands the service does not, run in it for
that reason), and the end is compared with the start like with like: before the first job, every
connection open and the histograms reset, ${kb(m.usedMemoryAt.baseline)}; after the final sweep
${kb(m.usedMemoryAt.final)}, and ${kb(m.usedMemoryAt.finalWithoutHistograms)} once the histograms were reset again (${leftOver(m)}).

| t (s) | phase | used_memory | clients' buffers | keys | index entries | expiries entries | expiries bytes |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |
${seriesRows.join('\n')}
`;
}

module.exports = { lifecycleSection };
