import Redis from 'ioredis';
import { connect } from 'node:net';
import { startRedis } from '../../src/testing';

describe('startRedis (redis-dual-write/testing)', () => {
  it('starts a private redis-server on a free loopback port that keeps its data across restart()', async () => {
    const handle = await startRedis({ via: 'binary' });
    const redis = new Redis(handle.url, { maxRetriesPerRequest: 3 });
    try {
      expect(handle.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(handle.url).not.toBe('redis://127.0.0.1:6379');
      await redis.hset('job:1', 'status', 'queued');

      await handle.restart();

      expect(await redis.hgetall('job:1')).toEqual({ status: 'queued' });
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      redis.disconnect();
      await handle.stop();
    }
  });

  it('stop() shuts the server down, and a second stop() is harmless', async () => {
    const handle = await startRedis({ via: 'binary' });
    await handle.stop();
    await handle.stop();

    const port = Number(new URL(handle.url).port);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve('connected'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('passes serverArgs to redis-server', async () => {
    const handle = await startRedis({ via: 'binary', serverArgs: ['--maxmemory', '12mb'] });
    const redis = new Redis(handle.url);
    try {
      expect(await redis.config('GET', 'maxmemory')).toEqual(['maxmemory', String(12 * 1024 * 1024)]);
    } finally {
      redis.disconnect();
      await handle.stop();
    }
  });

  it('uses REDIS_URL when it is set, and refuses to restart a server it does not own', async () => {
    const own = await startRedis({ via: 'binary' });
    const saved = process.env.REDIS_URL;
    process.env.REDIS_URL = own.url;
    try {
      const handle = await startRedis();

      expect(handle).toMatchObject({ url: own.url, via: 'url' });
      await expect(handle.restart()).rejects.toThrow(/cannot be restarted/);
      await handle.stop();
      const redis = new Redis(own.url);
      expect(await redis.ping()).toBe('PONG');
      redis.disconnect();
    } finally {
      if (saved === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = saved;
      await own.stop();
    }
  });

  it('says how to get a Redis when there is no REDIS_URL, container runtime or redis-server', async () => {
    const saved = { PATH: process.env.PATH, REDIS_URL: process.env.REDIS_URL };
    process.env.PATH = '/nonexistent';
    delete process.env.REDIS_URL;
    try {
      const error = await startRedis({ via: 'binary' }).catch((e) => e);

      expect(error.message).toMatch(/REDIS_URL/);
      expect(error.message).toMatch(/testcontainers/);
      expect(error.message).toMatch(/apt-get install redis-server/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.REDIS_URL !== undefined) process.env.REDIS_URL = saved.REDIS_URL;
    }
  });
});
