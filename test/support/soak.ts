import { appendFileSync } from 'node:fs';
import type { MemoryReport } from './memory';

/**
 * The fault scenarios run small in `npm test` and large in `npm run soak`, which sets these
 * variables (scripts/soak.js) and collects the rows each scenario records.
 */
export const SOAK = {
  /** Multiplies every scenario's operation count. */
  scale: positive(process.env.SOAK_SCALE, 1),
  /** Seeds the scenarios' randomness (reply drops, fast-check), so a row can be reproduced. */
  seed: positive(process.env.SOAK_SEED, 20_240_601),
  /** Where rows go, one JSON object a line; unset in `npm test`. */
  report: process.env.SOAK_REPORT,
};

/** `base` operations at this run's scale. */
export function scaled(base: number): number {
  return Math.max(1, Math.round(base * SOAK.scale));
}

/** One scenario's figures; soak sums the rows of one scenario into its table row. */
export interface SoakRow {
  scenario: number;
  name: string;
  operations: number;
  faults: number;
  faultKind: string;
  lost: number;
  duplicated: number;
  halfWritten: number;
  callerErrors: number;
  /** What the caller errors were, when there were any. */
  callerErrorKinds?: Record<string, number>;
  /** A scenario's own counts (claims, crashes, requeues, ...), listed in its section of the document. */
  figures?: Record<string, number>;
  /** Memory sampled over the run, for a scenario that runs long enough to show it. */
  memory?: MemoryReport;
}

export function recordRow(row: SoakRow): void {
  if (SOAK.report) appendFileSync(SOAK.report, `${JSON.stringify(row)}\n`);
}

/** A small seeded generator (mulberry32): the same seed drops the same replies. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function positive(value: string | undefined, fallback: number): number {
  const number = Number(value);
  return value !== undefined && Number.isFinite(number) && number > 0 ? number : fallback;
}
