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

/**
 * Holds a run to at most `jobsPerSecond` on average since it started, so a backfill does not
 * saturate a production Redis. Without a rate it never waits.
 */
export class Pacer {
  private readonly startedAt: number;
  private jobs = 0;

  constructor(
    private readonly jobsPerSecond: number | undefined,
    private readonly signal?: AbortSignal,
    private readonly clock: { now(): number; pause(ms: number, signal?: AbortSignal): Promise<void> } = { now: Date.now, pause },
  ) {
    this.startedAt = clock.now();
  }

  /** Counts jobs just done, then waits until the average rate since the start is back under the limit. */
  async after(jobs: number): Promise<void> {
    this.jobs += jobs;
    if (!this.jobsPerSecond) return;
    const due = this.startedAt + (this.jobs / this.jobsPerSecond) * 1000;
    await this.clock.pause(due - this.clock.now(), this.signal);
  }
}

/** A rate for reports, rounded: how many per second over a duration in milliseconds. */
export function perSecond(count: number, durationMs: number): number {
  return durationMs > 0 ? Math.round((count / durationMs) * 1000) : count;
}
