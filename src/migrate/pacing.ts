import { performance } from 'node:perf_hooks';

/** Resolves after `ms`, or at once when the signal aborts: a stop request never waits out a pause. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** What the pacer reads the time from and waits on; tests pass a fake one. */
export interface PacingClock {
  /** Milliseconds on a clock that never goes back. */
  now(): number;
  pause(ms: number, signal?: AbortSignal): Promise<void>;
}

const MONOTONIC: PacingClock = { now: () => performance.now(), pause };

/**
 * Holds a run to at most `jobsPerSecond` from its first page on, so a backfill does not saturate a
 * production Redis: a page's jobs are taken from the budget before the page is worked, so at any
 * moment the jobs begun (and so the jobs done) are at most the rate times the time since the run
 * started. Without a rate it never waits.
 */
export class Pacer {
  private readonly startedAt: number;
  private jobs = 0;

  constructor(
    private readonly jobsPerSecond: number | undefined,
    private readonly signal?: AbortSignal,
    private readonly clock: PacingClock = MONOTONIC,
  ) {
    this.startedAt = clock.now();
  }

  /**
   * Call before working a page of `jobs`: waits until the rate allows them, then counts them.
   * Returns false, having counted nothing, when the signal ended that wait: the page is not to be
   * worked (a backfill's checkpoint still points before it, so a resumed run does it).
   */
  async take(jobs: number): Promise<boolean> {
    if (this.jobsPerSecond) {
      const due = this.startedAt + ((this.jobs + jobs) / this.jobsPerSecond) * 1000;
      // A timer may fire a little before the clock reaches `due`: the bound is kept by the clock.
      for (let wait = due - this.clock.now(); wait > 0; wait = due - this.clock.now()) {
        if (this.signal?.aborted) return false;
        await this.clock.pause(wait, this.signal);
      }
    }
    this.jobs += jobs;
    return true;
  }
}

/** A rate for reports, rounded: how many per second over a duration in milliseconds. */
export function perSecond(count: number, durationMs: number): number {
  return durationMs > 0 ? Math.round((count / durationMs) * 1000) : count;
}
