import type { RedisClient } from '../scripts/registry';

/** Escapes the SCAN MATCH glob characters (* ? [ ] \) so a key prefix matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export interface ScanPage {
  /** Where the next call starts; '0' when the walk is over. */
  cursor: string;
  keys: string[];
  /** Keys the page held that the caller's exclude patterns left out. */
  excluded: number;
}

/**
 * One SCAN call: bounded work on the server (COUNT buckets), never KEYS. SCAN may return a key
 * twice and may miss keys created during the walk; callers must tolerate both.
 */
export async function scanPage(
  redis: RedisClient,
  cursor: string,
  match: string,
  type: 'hash' | 'zset',
  count: number,
  isExcluded: (key: string) => boolean = () => false,
): Promise<ScanPage> {
  const [next, found] = (await redis.call('SCAN', cursor, 'MATCH', match, 'COUNT', count, 'TYPE', type)) as [
    string,
    string[],
  ];
  const unique = [...new Set(found.map(String))];
  const keys = unique.filter((key) => !isExcluded(key));
  return { cursor: String(next), keys, excluded: unique.length - keys.length };
}

/**
 * How much of the keyspace a SCAN walk has covered, estimated from its cursor. Redis walks the hash
 * table in reverse-binary bucket order, so the cursor's bits read backwards are the share of buckets
 * already visited, whatever the table's size. An estimate for progress bars, nothing more.
 */
export function scanFraction(cursor: string): number {
  let value = BigInt(cursor);
  if (value === 0n) return 0;
  let reversed = 0n;
  for (let bit = 0; bit < 64; bit++) {
    reversed = (reversed << 1n) | (value & 1n);
    value >>= 1n;
  }
  return Number(reversed) / 2 ** 64;
}
