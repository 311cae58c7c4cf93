import Redis from 'ioredis';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONTAINER_IMAGE,
  CONTAINER_SERVERS,
  containerPlan,
  findServerBinary,
  serverVersion,
  startRedis,
} from '../../src/testing';

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

  it('says how to get a Redis when there is no REDIS_URL, REDIS_SERVER_BIN, container runtime or redis-server', async () => {
    const error = await withEnv({ PATH: '/nonexistent', REDIS_URL: undefined, REDIS_SERVER_BIN: undefined }, () =>
      startRedis({ via: 'binary' }).catch((e: Error) => e),
    );

    expect((error as Error).message).toMatch(/REDIS_URL/);
    expect((error as Error).message).toMatch(/REDIS_SERVER_BIN/);
    expect((error as Error).message).toMatch(/testcontainers/);
    expect((error as Error).message).toMatch(/apt-get install redis-server/);
  });
});

/** Runs `act` with these environment variables (undefined unsets one), then puts them back. */
async function withEnv<T>(vars: Record<string, string | undefined>, act: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await act();
  } finally {
    apply(saved);
  }
}

describe('server selection: REDIS_SERVER_BIN', () => {
  // The binary this run uses (REDIS_SERVER_BIN under npm run test:servers, else redis-server on PATH).
  const binary = findServerBinary()!.path;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-dual-write-bin-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts the binary it names, by the very path given, ahead of redis-server on PATH', async () => {
    // A link by another name, as Debian's own redis-server and valkey-server are links.
    const link = join(dir, 'chosen-server');
    symlinkSync(binary, link);

    const handle = await withEnv({ REDIS_SERVER_BIN: link, REDIS_URL: undefined, PATH: '/nonexistent' }, () => startRedis());
    const redis = new Redis(handle.url);
    try {
      const info = await redis.info('server');

      expect(handle.via).toBe('binary');
      // The server records the path it was started by: our link, not what the link resolves to.
      expect(/executable:(.*)\r/.exec(info)?.[1]).toBe(link);
      expect(info).toContain(`:${serverVersion(binary).version}\r`);
    } finally {
      redis.disconnect();
      await handle.stop();
    }
  });

  it('reads the version from the banner of Redis or Valkey, agreeing with what the running server reports', async () => {
    const version = serverVersion(binary);
    const handle = await startRedis({ via: 'binary' });
    const redis = new Redis(handle.url);
    try {
      const info = await redis.info('server');

      // Valkey reports redis_version:7.2.4 for compatibility, and its own in valkey_version.
      const reported = /valkey_version:(.*)\r/.exec(info)?.[1] ?? /redis_version:(.*)\r/.exec(info)![1];
      expect(version.product).toBe(/server_name:valkey/.test(info) ? 'Valkey' : 'Redis');
      expect(version.version).toBe(reported);
      expect(version.major).toBe(Number(reported.split('.')[0]));
    } finally {
      redis.disconnect();
      await handle.stop();
    }
  });

  it('refuses a link named like the RDB checker, saying to start the server through a server name', async () => {
    // Redis and Valkey are one binary that picks its mode from its name, as a resolved link would give.
    const checker = join(dir, 'redis-check-rdb');
    symlinkSync(binary, checker);

    const error = await withEnv({ REDIS_SERVER_BIN: checker }, () => startRedis({ via: 'binary' })).catch((e: Error) => e);

    expect(error).toBeInstanceOf(Error);
    // The checker answers --version with its own banner (Redis, Valkey 8) or takes it for a file name (Valkey 9).
    expect((error as Error).message).toMatch(/^\S+\/redis-check-rdb is not a Redis or Valkey server: its --version says "/);
    expect((error as Error).message).toMatch(/start it through a link named valkey-server or redis-server, not a resolved path/);
  });

  it('refuses a server older than 7.0, by its --version', async () => {
    const old = join(dir, 'old-server');
    writeFileSync(old, '#!/bin/sh\necho "Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.2.1 bits=64 build=0"\n', { mode: 0o755 });

    const error = await withEnv({ REDIS_SERVER_BIN: old }, () => startRedis({ via: 'binary' })).catch((e: Error) => e);

    expect((error as Error).message).toBe(`${old} is Redis 6.2.14: redis-dual-write needs Redis 7.0 or later, or Valkey`);
  });

  it('fails when it names no executable, rather than falling back to redis-server on PATH', async () => {
    const missing = join(dir, 'no-such-server');

    const error = await withEnv({ REDIS_SERVER_BIN: missing }, () => startRedis({ via: 'binary' })).catch((e: Error) => e);

    expect((error as Error).message).toBe(`REDIS_SERVER_BIN=${missing} is not an executable file`);
  });
});

describe('container images (Testcontainers; planned here, started only where a container runtime is)', () => {
  const durable = ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];

  it('offers the matrix servers by exact version tags', () => {
    expect(CONTAINER_SERVERS).toEqual({
      'redis-7.0': 'redis:7.0.15',
      'redis-8.0': 'redis:8.0.2',
      'valkey-8.0': 'valkey/valkey:8.0.1',
      'valkey-9.1': 'valkey/valkey:9.1.2',
    });
    for (const image of Object.values(CONTAINER_SERVERS)) expect(image).toMatch(/:\d+\.\d+\.\d+$/);
  });

  it('starts the image the README names when none is chosen, with redis-server', async () => {
    const plan = await withEnv({ REDIS_CONTAINER_IMAGE: undefined }, async () => containerPlan(undefined, ['--maxmemory', '10mb']));

    expect(CONTAINER_IMAGE).toBe('redis:7.2-alpine');
    expect(plan).toEqual({ image: 'redis:7.2-alpine', command: ['redis-server', ...durable, '--maxmemory', '10mb'] });
  });

  it('runs valkey-server in Valkey images and redis-server in Redis images, for matrix names and image references alike', () => {
    const program = (image: string) => containerPlan(image).command[0];

    expect(containerPlan('valkey-8.0')).toEqual({ image: 'valkey/valkey:8.0.1', command: ['valkey-server', ...durable] });
    expect(containerPlan('valkey-9.1')).toEqual({ image: 'valkey/valkey:9.1.2', command: ['valkey-server', ...durable] });
    expect(containerPlan('redis-8.0')).toEqual({ image: 'redis:8.0.2', command: ['redis-server', ...durable] });
    expect(program('valkey/valkey:9.1.2-alpine')).toBe('valkey-server');
    expect(program('registry.example:5000/mirror/valkey@sha256:0123')).toBe('valkey-server');
    expect(program('registry.example:5000/valkey')).toBe('valkey-server');
    expect(program('redis:7.0.15')).toBe('redis-server');
    expect(program('valkey-proxy/redis:7')).toBe('redis-server');
  });

  it('takes the image from REDIS_CONTAINER_IMAGE when none is given, and the option over it', async () => {
    const [fromEnv, fromOption] = await withEnv({ REDIS_CONTAINER_IMAGE: 'valkey-8.0' }, async () => [
      containerPlan(undefined).image,
      containerPlan('redis-7.0').image,
    ]);

    expect(fromEnv).toBe('valkey/valkey:8.0.1');
    expect(fromOption).toBe('redis:7.0.15');
  });
});
