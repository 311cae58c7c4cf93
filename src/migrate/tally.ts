/** One example of something a run counted: the key, and what about it. */
export interface Sample {
  kind: string;
  key: string;
  /** For records that differ: the names of the differing fields. */
  fields?: string[];
  /** Anything else an operator needs to find it, e.g. a queue entry and its position. */
  detail?: string;
}

/** Counts per kind, with up to `sampleLimit` samples of each kind. */
export class Tally<K extends string> {
  readonly counts: Record<K, number>;
  readonly samples: Sample[] = [];
  private readonly sampled = new Map<string, number>();

  constructor(
    kinds: readonly K[],
    private readonly sampleLimit: number,
    initial: Partial<Record<K, number>> = {},
  ) {
    this.counts = Object.fromEntries(kinds.map((kind) => [kind, initial[kind] ?? 0])) as Record<K, number>;
  }

  add(kind: K, sample?: Omit<Sample, 'kind'>): void {
    this.counts[kind] += 1;
    if (!sample) return;
    const taken = this.sampled.get(kind) ?? 0;
    if (taken >= this.sampleLimit) return;
    this.sampled.set(kind, taken + 1);
    this.samples.push({ kind, ...sample });
  }

  total(): number {
    return Object.values<number>(this.counts).reduce((sum, n) => sum + n, 0);
  }

  /** Only the kinds seen at least once. */
  nonZero(): Partial<Record<K, number>> {
    return Object.fromEntries(Object.entries<number>(this.counts).filter(([, n]) => n > 0)) as Partial<Record<K, number>>;
  }
}
