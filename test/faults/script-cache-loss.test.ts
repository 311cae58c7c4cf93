/**
 * Scenario 3, script cache loss: Redis forgets its scripts on restart, failover and SCRIPT FLUSH.
 * With the cache emptied every 50 ms under a mixed load, no caller may see NOSCRIPT or any other
 * error, and every reload must be counted.
 */
import Redis from 'ioredis';
import type { Registry } from 'prom-client';
import { flushScriptsEvery } from '../../src/testing';
import { checkInvariants, tally } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';
import { recordRow, scaled } from '../support/soak';
import { againstAcknowledged, runWorkload, sum } from '../support/workload';

const ctx = useRedis();

async function reloadsCounted(registry: Registry): Promise<number> {
  const { values } = await registry.getSingleMetric('dualwrite_script_reloads_total')!.get();
  return values.reduce((total, { value }) => total + value, 0);
}

describe('scenario 3: script cache loss', () => {
  it('SCRIPT FLUSH every 50 ms during a mixed load: no error reaches a caller, and every reload is counted', async () => {
    const clients = [1, 2, 3].map(() => new Redis(ctx.handle.url, { disconnectTimeout: 50 }));
    const queues = await Promise.all(clients.map((client) => makeQueue(client, 'live')));
    await ctx.redis.config('RESETSTAT');
    const flusher = flushScriptsEvery(ctx.redis, { everyMs: 50, forMs: 600_000 });

    try {
      const result = await runWorkload({ queues: queues.map((q) => q.queue), jobs: scaled(150), concurrency: 6 });
      const flushes = await flusher.stop();

      expect(flushes).toBeGreaterThan(0);
      expect(result.callerErrors).toEqual({});
      const noscripts = Number(/errorstat_NOSCRIPT:count=(\d+)/.exec(await ctx.redis.info('errorstats'))?.[1] ?? 0);
      const reloads = (await Promise.all(queues.map((q) => reloadsCounted(q.registry)))).reduce((a, b) => a + b, 0);
      expect(noscripts).toBeGreaterThan(0);
      expect(reloads).toBe(noscripts); // each NOSCRIPT Redis answered was one counted reload
      const report = await checkInvariants(ctx.redis);
      expect(report.violations).toEqual([]);
      expect(againstAcknowledged(report, result)).toEqual({ lost: 0, stale: 0 });
      expect(report.jobs).toHaveLength(result.logicalJobs);
      recordRow({
        scenario: 3, name: 'script cache loss (SCRIPT FLUSH every 50 ms)', operations: result.calls, faults: flushes,
        faultKind: `SCRIPT FLUSH (${noscripts} NOSCRIPT answers, ${reloads} reloads counted)`,
        ...tally(report, result.acknowledged.values(), result.logicalJobs),
        callerErrors: sum(result.callerErrors), callerErrorKinds: result.callerErrors,
      });
    } finally {
      await flusher.stop();
      for (const client of clients) client.disconnect();
    }
  });
});
