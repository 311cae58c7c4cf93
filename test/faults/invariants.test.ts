/**
 * The checker the fault scenarios rely on: a healthy database passes, and each way a job can be
 * lost, duplicated or half-written is reported, so "no violations" in a scenario means something.
 */
import type Redis from 'ioredis';
import { checkInvariants, tally, type ViolationKind } from '../support/invariants';
import { makeQueue, useRedis } from '../support/redis';

const ctx = useRedis();
let jobId: string;

beforeEach(async () => {
  const { queue } = await makeQueue(ctx.redis, 'dualwrite');
  ({ jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: { n: 1 }, idempotencyKey: 'order-1' }));
});

describe('checkInvariants', () => {
  it('finds nothing wrong with what the package wrote', async () => {
    const report = await checkInvariants(ctx.redis);

    expect(report.violations).toEqual([]);
    expect(report.jobs).toEqual([
      expect.objectContaining({ workspaceId: 'acme', jobId, queueEntries: 1, legacy: expect.any(Object), new: expect.any(Object) }),
    ]);
  });

  it.each<[string, (redis: Redis, jobId: string) => Promise<unknown>, ViolationKind]>([
    ['a layout missing', (r, id) => r.del(`ws:acme:job:${id}`), 'missing_layout'],
    ['the layouts differing', (r, id) => r.hset(`ws:acme:job:${id}`, 'status', 'running'), 'layouts_differ'],
    ['a record without a field', (r, id) => r.hdel(`job:${id}`, 'type'), 'record_incomplete'],
    ['a record naming another workspace', (r, id) => r.hset(`ws:acme:job:${id}`, 'workspace_id', 'globex'), 'record_incomplete'],
    ['a job missing from its index', (r, id) => r.zrem('ws:acme:jobs', id), 'not_indexed'],
    ['an index entry without a job', (r) => r.zadd('ws:acme:jobs', 1, 'ghost'), 'index_orphan'],
    ['a queue entry without a job', (r) => r.rpush('queue:default', 'ghost'), 'queue_orphan'],
    ['a queued job without its queue entry', (r) => r.del('queue:default'), 'not_queued'],
    ['a job queued twice', (r, id) => r.rpush('queue:default', id), 'queued_twice'],
    ['an idempotency key pointing at no job', (r) => r.set('ws:acme:idem:order-2', 'abc123:ghost', 'EX', 60), 'idempotency_orphan'],
    ['an idempotency key without a TTL', (r) => r.persist('ws:acme:idem:order-1'), 'idempotency_without_ttl'],
    ['a key outside the layout', (r) => r.set('stray', '1'), 'unknown_key'],
  ])('reports %s', async (_, breakIt, kind) => {
    await breakIt(ctx.redis, jobId);

    const report = await checkInvariants(ctx.redis);

    expect(report.violations.map((v) => v.kind)).toContain(kind);
  });

  it('tallies acknowledged jobs that are gone as lost, and jobs beyond the requests made as duplicated', async () => {
    await ctx.redis.rpush('queue:default', jobId);
    const report = await checkInvariants(ctx.redis);

    const figures = tally(report, [{ workspaceId: 'acme', jobId }, { workspaceId: 'acme', jobId: 'gone' }], 0);

    expect(figures).toEqual({ jobs: 1, lost: 1, duplicated: 2, halfWritten: 0 });
  });
});
