/**
 * The fault-injection toolkit itself (redis-dual-write/testing): each tool does what it says,
 * bounded in count and time, and stops by itself. The scenarios rely on these.
 */
import Redis from 'ioredis';
import { connect } from 'node:net';
import { flushScriptsEvery, setMaxMemory, startFaultProxy, type FaultProxy } from '../../src/testing';
import { useRedis } from '../support/redis';

const ctx = useRedis();
let proxy: FaultProxy;
let client: Redis;

beforeEach(async () => {
  proxy = await startFaultProxy({ target: ctx.handle.url });
  // Without resends, a cut connection fails its calls instead of running them again.
  client = new Redis(proxy.url, { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, disconnectTimeout: 50 });
  client.on('error', () => {});
  await client.ping();
});
afterEach(async () => {
  client.disconnect();
  await proxy.close();
});

describe('fault proxy', () => {
  it('forwards pipelined commands and their replies in order', async () => {
    const replies = await client
      .pipeline([['set', 'a', '1'], ['incr', 'a'], ['get', 'a'], ['lpush', 'l', 'x', 'y'], ['lrange', 'l', '0', '-1']])
      .exec();

    expect(replies).toEqual([[null, 'OK'], [null, 2], [null, '2'], [null, 2], [null, ['y', 'x']]]);
    expect(proxy.stats()).toMatchObject({ repliesDropped: 0, connectionsCut: 0 });
  });

  it('drops the reply of the next matching command after Redis ran it, and cuts that connection', async () => {
    const drop = proxy.dropReplies(1, { commands: ['incr'] });

    const replies = await client.pipeline([['set', 'n', '10'], ['incr', 'n'], ['incr', 'n']]).exec();

    expect(replies![0]).toEqual([null, 'OK']); // before the dropped reply: delivered
    expect(replies![1][0]).toBeInstanceOf(Error); // its reply was dropped
    expect(replies![2][0]).toBeInstanceOf(Error); // after it, the connection was gone
    expect(await drop.done).toBe(1);
    expect(await ctx.redis.get('n')).toBe('12'); // yet Redis ran both increments
    expect(proxy.stats()).toMatchObject({ repliesDropped: 1, connectionsCut: 1 });
  });

  it('counts replies across chunks and nested arrays, so it drops the right one', async () => {
    await ctx.redis.rpush('big', ...Array.from({ length: 5000 }, (_, i) => `item-${i}-${'x'.repeat(20)}`));
    const drop = proxy.dropReplies(1, { commands: ['get'] });

    const replies = await client
      .pipeline([['lrange', 'big', '0', '-1'], ['hello', '2'], ['echo', 'before'], ['get', 'dropped']])
      .exec();

    expect((replies![0][1] as string[]).length).toBe(5000);
    expect(replies![2]).toEqual([null, 'before']);
    expect(replies![3][0]).toBeInstanceOf(Error);
    expect(await drop.done).toBe(1);
  });

  it('drops no more than its count, and its budget lapses by itself', async () => {
    const drop = proxy.dropReplies(2, { commands: ['incr'], withinMs: 200 });
    for (let i = 0; i < 4; i++) await client.incr('c').catch(() => {});

    expect(await drop.done).toBe(2);
    expect(await ctx.redis.get('c')).toBe('4');

    const lapsed = proxy.dropReplies(1, { commands: ['incr'], withinMs: 20 });
    expect(await lapsed.done).toBe(0); // settles without a single matching command
    expect(await client.incr('c')).toBe(5);
  });

  it('cuts every open connection, and new ones work at once', async () => {
    const other = new Redis(proxy.url); // ioredis' defaults: reconnect, resend
    other.on('error', () => {});
    await other.ping();

    expect(proxy.cutConnections()).toBe(2);
    expect(await other.ping()).toBe('PONG'); // ioredis reconnected
    other.disconnect();
  });

  it('makes Redis unreachable (ECONNREFUSED) for a while, then reachable again by itself', async () => {
    await proxy.refuseConnections(300);

    expect(await connectOutcome(proxy.port)).toBe('ECONNREFUSED');
    expect(proxy.stats().connectionsCut).toBe(1); // the client's open connection
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await connectOutcome(proxy.port)).toBe('connected');
    expect(await client.ping()).toBe('PONG'); // ioredis reconnected on its own
  });

  it('ends an outage early when asked', async () => {
    await proxy.refuseConnections(60_000);
    await proxy.refuseConnections(0);

    expect(await connectOutcome(proxy.port)).toBe('connected');
  });

  it('adds latency without reordering anything, and the latency ends by itself', async () => {
    proxy.addLatency(30, 200);
    const during = await client.pipeline(Array.from({ length: 20 }, (_, i) => ['echo', `m${i}`])).exec();
    await new Promise((resolve) => setTimeout(resolve, 250));
    const after = await client.echo('after');

    expect(during!.map(([, value]) => value)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(after).toBe('after');
  });

  it('forwards to loopback only, and closes itself at the end of its lifetime', async () => {
    await expect(startFaultProxy({ target: 'redis://10.1.2.3:6379' })).rejects.toThrow(/loopback/);

    const shortLived = await startFaultProxy({ target: ctx.handle.url, lifetimeMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await connectOutcome(shortLived.port)).toBe('ECONNREFUSED');
  });
});

describe('server faults', () => {
  it('crash() kills -9 and restarts on the same data: every acknowledged write is there', async () => {
    for (let i = 0; i < 200; i++) await ctx.redis.incr('acknowledged');

    await ctx.handle.crash();

    expect(await ctx.redis.get('acknowledged')).toBe('200');
  });

  it('flushes the script cache on a timer and stops by itself after its count', async () => {
    const before = Number(/cmdstat_script\|flush:calls=(\d+)/.exec(await ctx.redis.info('commandstats'))?.[1] ?? 0);
    const flusher = flushScriptsEvery(ctx.redis, { everyMs: 5, forMs: 10_000, maxFlushes: 4 });

    expect(await flusher.done).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 30)); // long enough for more flushes, had it not stopped
    const after = Number(/cmdstat_script\|flush:calls=(\d+)/.exec(await ctx.redis.info('commandstats'))?.[1] ?? 0);
    expect(after - before).toBe(4);
  });

  it('caps memory under noeviction, refuses writes, and puts the settings back by itself', async () => {
    const cap = await setMaxMemory(ctx.redis, { bytes: 1, restoreAfterMs: 100 });

    await expect(ctx.redis.set('k', 'v')).rejects.toThrow(/^OOM/);
    expect(await ctx.redis.config('GET', 'maxmemory')).toEqual(['maxmemory', '1']);
    expect(await ctx.redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await ctx.redis.set('k', 'v')).toBe('OK');
    expect(await ctx.redis.config('GET', 'maxmemory')).toEqual(['maxmemory', '0']);
    await cap.restore(); // a second restore is harmless
  });

  it('refuses to inject server faults into a Redis that is not on loopback', async () => {
    const remote = new Redis({ host: '10.1.2.3', lazyConnect: true });

    expect(() => flushScriptsEvery(remote, { forMs: 10 })).toThrow(/loopback/);
    await expect(setMaxMemory(remote, { bytes: 1 })).rejects.toThrow(/loopback/);
    remote.disconnect();
  });
});

/** Whether a plain TCP connection to the port succeeds, or the error code it fails with. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}
