import { escapeGlob, scanFraction, scanPage } from '../../src/migrate/scan';
import { useRedis } from '../support/redis';

const ctx = useRedis();

async function scanAll(match: string, count = 1000): Promise<{ keys: string[]; fractions: number[] }> {
  const keys: string[] = [];
  const fractions: number[] = [];
  let cursor = '0';
  do {
    const page = await scanPage(ctx.redis, cursor, match, 'hash', count);
    keys.push(...page.keys);
    cursor = page.cursor;
    fractions.push(cursor === '0' ? 1 : scanFraction(cursor));
  } while (cursor !== '0');
  return { keys: keys.sort(), fractions };
}

describe('SCAN over the layout', () => {
  it('matches a prefix holding glob characters literally', async () => {
    const prefix = 'a*b?[c]\\:';
    for (const key of [`${prefix}job:1`, 'aXbY[c]\\:job:2', 'a*b?c\\:job:3', 'ab?[c]\\:job:4', 'a*b?[c]:job:5']) {
      await ctx.redis.hset(key, 'id', '1');
    }

    const { keys } = await scanAll(`${escapeGlob(prefix)}job:*`);

    expect(escapeGlob(prefix)).toBe('a\\*b\\?\\[c\\]\\\\:');
    expect(keys).toEqual([`${prefix}job:1`]);
  });

  it('returns only keys of the asked type', async () => {
    await ctx.redis.hset('job:1', 'id', '1');
    await ctx.redis.set('job:2', 'x');

    expect((await scanAll('job:*')).keys).toEqual(['job:1']);
  });

  it('estimates progress from the cursor: rising from 0 to 1 over a walk of the whole keyspace', async () => {
    const pipeline = ctx.redis.pipeline();
    for (let i = 0; i < 4000; i++) pipeline.hset(`job:${i}`, 'id', String(i));
    await pipeline.exec();

    const { keys, fractions } = await scanAll('job:*', 100);

    expect(keys).toHaveLength(4000);
    expect(fractions.every((f, i) => f > 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]))).toBe(true);
    expect(fractions.at(-1)).toBe(1);
    // Halfway through the calls, the estimate is roughly halfway: a hint for the bar, not an exact count.
    expect(fractions[Math.floor(fractions.length / 2)]).toBeGreaterThan(0.3);
    expect(fractions[Math.floor(fractions.length / 2)]).toBeLessThan(0.7);
    expect(scanFraction('0')).toBe(0);
  });
});
