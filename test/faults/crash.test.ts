/**
 * Scenario 2, crash: Redis is killed with SIGKILL while enqueues and updates run, and restarts on
 * the same data. With appendfsync always, Redis answers a write only after its append-only file
 * holds it, so every acknowledged operation must survive; a script's writes go to the file as one
 * MULTI/EXEC, so a crash cannot leave half of one behind.
 */
import Redis from 'ioredis';
import { checkInvariants, tally } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow, scaled } from '../support/soak';
import { againstAcknowledged, runWorkload, sum } from '../support/workload';

const ctx = useRedis();

describe('scenario 2: crash', () => {
  it('kill -9 during enqueues and updates: every acknowledged operation is there, no record half-written', async () => {
    const client = new Redis(ctx.handle.url, { disconnectTimeout: 50 }); // ioredis defaults: reconnect and resend
    client.on('error', () => {});
    const { queue } = await makeQueue(client, 'dualwrite');
    const jobs = scaled(60);
    const plannedCrashes = Math.max(2, Math.round(jobs / 30));
    const crashEvery = Math.floor((jobs * 6) / (plannedCrashes + 1)); // about 6 calls a job
    let crashes = 0;
    let crashing: Promise<void> | undefined;

    try {
      const result = await runWorkload({
        queues: [queue],
        jobs,
        concurrency: 8,
        afterCall: (calls) => {
          // One crash at a time, while other calls are in flight.
          if (!crashing && crashes < plannedCrashes && calls >= crashEvery * (crashes + 1)) {
            crashing = ctx.handle.crash().then(() => {
              crashes++;
              crashing = undefined;
            });
          }
        },
      });
      await crashing;

      expect(crashes).toBe(plannedCrashes);
      const report = await checkInvariants(ctx.redis);
      expect(report.violations).toEqual([]);
      expect(againstAcknowledged(report, result)).toEqual({ lost: 0, stale: 0 });
      expect(result.acknowledged.size).toBe(jobs);
      expect(report.jobs).toHaveLength(jobs);
      expect(result.gaveUp).toBe(0);
      recordRow({
        scenario: 2, name: 'crash (kill -9, restart on the same data)', operations: result.calls, faults: crashes,
        faultKind: 'kill -9 of redis-server', ...tally(report, result.acknowledged.values(), jobs),
        callerErrors: sum(result.callerErrors), callerErrorKinds: result.callerErrors,
      });
    } finally {
      client.disconnect();
    }
  });
});
