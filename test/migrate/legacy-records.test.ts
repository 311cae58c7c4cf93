/**
 * What the migration makes of the legacy layout as a real legacy service leaves it: records it
 * cannot migrate (one definition for backfill, verify and cleanup), other hashes under the job
 * pattern (the exclude option), and expiry times (copied to the millisecond, compared by verify).
 */
import fc from 'fast-check';
import { ValidationError } from '../../src';
import { globToRegExp } from '../../src/migrate/exclude';
import { useRedis } from '../support/redis';
import { hash, jobFields, jobHash, putJob, redisState, zset } from '../support/state';
import { CREATED, makeMigration, record } from './fixtures';

const ctx = useRedis();

describe('one definition of a legacy record the package can migrate', () => {
  it('a record whose created_at is no number is skipped by backfill, reported by verify as bad_legacy_record (not missing_new), and stops cleanup', async () => {
    await ctx.redis.hset('job:y1', { ...jobFields(record('y1', 'acme')), created_at: 'yesterday' });
    await putJob(ctx.redis, 'job:ok', record('ok', 'acme'));
    const detail = 'created_at "yesterday" is not a number of ms';

    const backfilled = await makeMigration(ctx.redis, 'dualwrite').migration.backfill();
    const verified = await makeMigration(ctx.redis, 'dualwrite').migration.verify();
    const afterBackfill = await redisState(ctx.redis);
    const cleanup = await makeMigration(ctx.redis, 'complete').migration.cleanup({ yes: true }).catch((e) => e);

    expect(backfilled.skipped).toMatchObject({ bad_created_at: 1 });
    expect(backfilled.samples).toEqual([{ kind: 'bad_created_at', key: 'job:y1', detail }]);
    expect(verified.divergences).toMatchObject({ bad_legacy_record: 1, missing_new: 0 });
    expect(verified.samples).toEqual([{ kind: 'bad_legacy_record', key: 'job:y1', detail }]);
    expect(cleanup).toMatchObject({ code: 'VERIFY_NOT_CLEAN', divergences: { bad_legacy_record: 1 } });
    expect(await redisState(ctx.redis)).toEqual(afterBackfill);
    expect(Object.keys(afterBackfill).sort()).toEqual(['job:ok', 'job:y1', 'ws:acme:job:ok', 'ws:acme:jobs']);
  });
});

describe('exclude: other hashes a legacy service keeps under the job pattern', () => {
  async function putLegacyWithMeta(): Promise<void> {
    await putJob(ctx.redis, 'job:j1', record('j1', 'acme'));
    await putJob(ctx.redis, 'job:j2', record('j2', 'acme'));
    await ctx.redis.hset('job:j1:meta', { attempts: '3' });
    await ctx.redis.hset('job:j2:audit:2024', { by: 'ops' });
  }

  it('without it, they are bad records: backfill skips them and verify reports them', async () => {
    await putLegacyWithMeta();

    const backfilled = await makeMigration(ctx.redis, 'dualwrite').migration.backfill();
    const verified = await makeMigration(ctx.redis, 'dualwrite').migration.verify();

    expect(backfilled.skipped).toMatchObject({ bad_job_id: 2 });
    expect(verified.divergences).toMatchObject({ bad_legacy_record: 2 });
  });

  it('with it, backfill, verify and cleanup pass them over, count them, and never touch them', async () => {
    await putLegacyWithMeta();
    const exclude = ['job:*:meta', 'job:*:audit:*'];
    const meta = { 'job:j1:meta': hash({ attempts: '3' }), 'job:j2:audit:2024': hash({ by: 'ops' }) };

    const backfilled = await makeMigration(ctx.redis, 'dualwrite', { exclude }).migration.backfill();
    const verified = await makeMigration(ctx.redis, 'dualwrite', { exclude }).migration.verify();
    const cleaned = await makeMigration(ctx.redis, 'complete', { exclude }).migration.cleanup({ yes: true });

    expect(backfilled).toMatchObject({ excluded: 2, results: { copied: 2, skipped: 0 } });
    expect(verified).toMatchObject({ clean: true, excluded: 2 });
    expect(cleaned).toMatchObject({ completed: true, excluded: 2, results: { deleted: 2, kept_bad_record: 0 } });
    expect(await redisState(ctx.redis)).toEqual({
      ...meta,
      'ws:acme:job:j1': jobHash(record('j1', 'acme')),
      'ws:acme:job:j2': jobHash(record('j2', 'acme')),
      'ws:acme:jobs': zset(['j1', CREATED + 1], ['j2', CREATED + 2]),
    });
  });

  it.each<[string, unknown, string]>([
    ['not an array', 'job:*:meta', 'exclude'],
    ['an empty pattern', [''], 'exclude[0]'],
    ['a pattern that is no string', ['job:*', 7], 'exclude[1]'],
  ])('refuses %s with a ValidationError naming the field, before anything is sent', async (_what, exclude, field) => {
    expect(() => makeMigration(ctx.redis, 'dualwrite', { exclude: exclude as string[] })).toThrow(ValidationError);
    expect(() => makeMigration(ctx.redis, 'dualwrite', { exclude: exclude as string[] })).toThrow(expect.objectContaining({ field }));
  });

  it('matches a key exactly as Redis glob matching (SCAN MATCH) does', async () => {
    const alphabet = ['a', 'b', ':', '-', '*', '?', '[', ']', '^', '\\', 'z'];
    const keys = [...new Set(fc.sample(fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 6 }), { numRuns: 300, seed: 7 }))];
    const pipeline = ctx.redis.pipeline();
    for (const key of keys) pipeline.set(`k${key}`, '1');
    await pipeline.exec();
    const patterns = fc.sample(fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 6 }), { numRuns: 200, seed: 11 });

    for (const body of [...patterns, '*', 'a?b', '[ab]*', '[^a]*', '[a-b]:', '[b-a]*', '\\**', '[\\]]*', '[]', 'a[']) {
      const pattern = `k${body}`;
      const redisMatched = new Set<string>();
      let cursor = '0';
      do {
        const [next, found] = await ctx.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        found.forEach((key) => redisMatched.add(key));
        cursor = next;
      } while (cursor !== '0');
      const ours = keys.map((key) => `k${key}`).filter((key) => globToRegExp(pattern).test(key));
      expect({ pattern, matched: ours.sort() }).toEqual({ pattern, matched: [...redisMatched].sort() });
    }
  });
});

describe('expiry', () => {
  it('a backfill copy expires at the legacy record\'s millisecond, however long its batch takes', async () => {
    // A full batch of 500 expiring jobs: on Redis 7.0 the clock moves while one script runs, so a
    // relative TTL read early and applied late would land milliseconds off.
    const pipeline = ctx.redis.pipeline();
    const base = Date.now() + 3_600_000;
    for (let i = 0; i < 500; i++) {
      pipeline.hset(`job:e${i}`, { ...jobFields(record(`e${i}`, 'acme')), payload: JSON.stringify({ pad: 'x'.repeat(2_000), i }) });
      pipeline.pexpireat(`job:e${i}`, base + i * 7);
    }
    await pipeline.exec();

    const report = await makeMigration(ctx.redis, 'dualwrite').migration.backfill({ batchSize: 500 });

    expect(report.results.copied).toBe(500);
    const state = await redisState(ctx.redis);
    const late = Array.from({ length: 500 }, (_, i) => i).filter((i) => state[`ws:acme:job:e${i}`].expiresAt !== base + i * 7);
    expect(late).toEqual([]);
  });

  it('verify reports ttl_mismatch when the two records expire apart, and backfill --resync gives the copy the legacy expiry', async () => {
    const expiresAt = Date.now() + 3_600_000;
    for (const id of ['t1', 't2', 't3']) {
      await putJob(ctx.redis, `job:${id}`, record(id, 'acme'));
      await putJob(ctx.redis, `ws:acme:job:${id}`, record(id, 'acme'));
      await ctx.redis.zadd('ws:acme:jobs', record(id, 'acme').createdAt, id);
    }
    await ctx.redis.pexpireat('job:t1', expiresAt); // the legacy service expired it; the copy lives forever
    await ctx.redis.pexpireat('ws:acme:job:t2', expiresAt); // the other way round
    await ctx.redis.pexpireat('job:t3', expiresAt);
    await ctx.redis.pexpireat('ws:acme:job:t3', expiresAt); // the same millisecond: no divergence

    const before = await makeMigration(ctx.redis, 'live').migration.verify();
    const copied = await makeMigration(ctx.redis, 'live').migration.backfill();
    const resynced = await makeMigration(ctx.redis, 'live').migration.backfill({ mode: 'resync' });
    const after = await makeMigration(ctx.redis, 'live').migration.verify();

    expect(before.divergences).toMatchObject({ ttl_mismatch: 2 });
    expect([...before.samples].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { kind: 'ttl_mismatch', key: 'ws:acme:job:t1', detail: `expires at never, its legacy record at ${new Date(expiresAt).toISOString()}` },
      { kind: 'ttl_mismatch', key: 'ws:acme:job:t2', detail: `expires at ${new Date(expiresAt).toISOString()}, its legacy record at never` },
    ].sort((a, b) => a.key.localeCompare(b.key)));
    expect(copied.results).toMatchObject({ same: 3, resynced: 0 });
    expect(resynced.results).toMatchObject({ same: 1, resynced: 2 });
    expect(after).toMatchObject({ clean: true });
    const state = await redisState(ctx.redis);
    expect([state['ws:acme:job:t1'].expiresAt, state['ws:acme:job:t2'].expiresAt]).toEqual([expiresAt, undefined]);
  });
});
