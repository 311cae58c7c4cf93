import { Pacer, pause } from '../../src/migrate/pacing';

/** A clock that only moves when the pacer pauses, so the test sees exactly what it asked for. */
function fakeClock() {
  const clock = {
    time: 1_000,
    pauses: [] as number[],
    now: () => clock.time,
    pause: async (ms: number) => {
      clock.pauses.push(ms);
      if (ms > 0) clock.time += ms;
    },
  };
  return clock;
}

describe('Pacer', () => {
  it('holds the average to the rate: 1000 jobs at 500 jobs/s take 2 s of pauses', async () => {
    const clock = fakeClock();
    const pacer = new Pacer(500, undefined, clock);

    for (let batch = 0; batch < 5; batch++) {
      clock.time += 100; // each batch of 200 itself takes 100 ms
      await pacer.after(200);
    }

    expect(clock.pauses).toEqual([300, 300, 300, 300, 300]);
    expect(clock.time - 1_000).toBe(2_000);
  });

  it('does not pause when the work is slower than the rate, nor without a rate', async () => {
    const slow = fakeClock();
    const unlimited = fakeClock();
    const slowPacer = new Pacer(1_000, undefined, slow);
    const unlimitedPacer = new Pacer(undefined, undefined, unlimited);

    slow.time += 500;
    await slowPacer.after(100);
    await unlimitedPacer.after(1_000_000);

    expect(slow.pauses).toEqual([-400]);
    expect(unlimited.pauses).toEqual([]);
  });

  it('a pause ends at once when the signal aborts, so Ctrl-C never waits out the rate limit', async () => {
    const stop = new AbortController();
    const pausing = pause(3_600_000, stop.signal);

    stop.abort();

    await expect(pausing).resolves.toBeUndefined();
  });
});
