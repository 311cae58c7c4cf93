import { performance } from 'node:perf_hooks';
import { Pacer, pause } from '../../src/migrate/pacing';
import { useRedis } from '../support/redis';
import { makeMigration, putLegacyJobs } from './fixtures';

/**
 * A clock that only moves when asked: by the test (the work a page takes) or by the pacer's pauses,
 * so a test sees exactly which pauses the pacer asked for and how many jobs it let through when.
 */
function fakeClock() {
  const clock = {
    time: 1_000,
    pauses: [] as number[],
    now: () => clock.time,
    pause: async (ms: number) => {
      clock.pauses.push(ms);
      clock.time += ms;
    },
  };
  return clock;
}

describe('Pacer', () => {
  it('paces from the first page: no page starts before the rate allows all of it', async () => {
    const clock = fakeClock();
    const pacer = new Pacer(1_000, undefined, clock);
    const started: { at: number; jobs: number }[] = [];
    let jobs = 0;

    for (let page = 0; page < 5; page++) {
      await pacer.take(200);
      jobs += 200;
      started.push({ at: clock.time - 1_000, jobs });
      clock.time += 50; // working a page of 200 takes 50 ms
    }

    // Each page waits its turn, the first one included: 200 jobs are 200 ms of the rate.
    expect(started).toEqual([
      { at: 200, jobs: 200 },
      { at: 400, jobs: 400 },
      { at: 600, jobs: 600 },
      { at: 800, jobs: 800 },
      { at: 1_000, jobs: 1_000 },
    ]);
    expect(clock.pauses).toEqual([200, 150, 150, 150, 150]);
  });

  it('a page larger than a second of the rate starts once the rate allows all of it, never earlier', async () => {
    const clock = fakeClock();
    const pacer = new Pacer(50, undefined, clock);

    await pacer.take(200);
    const firstAt = clock.time - 1_000;
    await pacer.take(200);

    expect([firstAt, clock.time - 1_000]).toEqual([4_000, 8_000]);
  });

  it('does not pause when the work is slower than the rate, nor without a rate', async () => {
    const slow = fakeClock();
    const unlimited = fakeClock();
    const slowPacer = new Pacer(1_000, undefined, slow);
    const unlimitedPacer = new Pacer(undefined, undefined, unlimited);

    slow.time += 500;
    await slowPacer.take(100);
    slow.time += 500;
    await slowPacer.take(100);
    await unlimitedPacer.take(1_000_000);

    expect(slow.pauses).toEqual([]);
    expect(unlimited.pauses).toEqual([]);
  });

  it('waits again when a pause ends before the time it asked for, as a timer may', async () => {
    const clock = fakeClock();
    // The first timer fires 1 ms early, as Node's may against a sub-millisecond clock.
    const early = { ...clock, pause: async (ms: number) => clock.pause(clock.pauses.length === 0 ? ms - 1 : ms) };
    const pacer = new Pacer(1_000, undefined, early);

    await pacer.take(100);

    expect(clock.pauses).toEqual([99, 1]);
    expect(clock.time - 1_000).toBe(100);
  });

  it('a stop request ends the wait and the page is not to be worked; without a wait the page goes on', async () => {
    const stop = new AbortController();
    stop.abort();
    const clock = fakeClock();
    const paced = new Pacer(10, stop.signal, clock);
    const unpaced = new Pacer(undefined, stop.signal, fakeClock());

    const [pacedGoesOn, unpacedGoesOn] = [await paced.take(100), await unpaced.take(100)];

    expect([pacedGoesOn, unpacedGoesOn]).toEqual([false, true]);
    expect(clock.pauses).toEqual([]);
  });

  it('a pause ends at once when the signal aborts, so Ctrl-C never waits out the rate limit', async () => {
    const stop = new AbortController();
    const pausing = pause(3_600_000, stop.signal);

    stop.abort();

    await expect(pausing).resolves.toBeUndefined();
  });
});

describe('a rate-limited backfill against real Redis', () => {
  const ctx = useRedis();

  it('never has more jobs done than the rate allows for the time since it started, from the first page on', async () => {
    await putLegacyJobs(ctx.redis, 600, ['acme']);
    const { migration } = makeMigration(ctx.redis, 'dualwrite');
    await migration.ready();
    const rate = 1_000;
    const seen: { elapsedMs: number; done: number }[] = [];
    const startedAt = performance.now();

    const report = await migration.backfill({
      rateLimit: rate,
      batchSize: 100,
      // Called after each page: what the page did is already in Redis.
      onProgress: ({ done }) => seen.push({ elapsedMs: performance.now() - startedAt, done }),
    });

    expect(report).toMatchObject({ completed: true, examined: 600, results: { copied: 600 } });
    expect(seen.length).toBeGreaterThanOrEqual(6);
    // Load only makes a page later, never earlier: the bound is against the run's own clock.
    const over = seen.filter(({ elapsedMs, done }) => done > (rate * elapsedMs) / 1000);
    expect(over).toEqual([]);
    expect(seen[seen.length - 1].done).toBe(600);
    expect(await ctx.redis.dbsize()).toBe(600 + 600 + 1);
  });
});
