/**
 * The cluster harness itself (redis-dual-write/testing): the cluster it starts is whole and ok on
 * every node, a failover hands a master's slots to its replica, and stop() leaves nothing behind.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { findServerBinary, redisClusterSupport, startRedisCluster } from '../../src/testing';
import { describeCluster } from '../support/cluster';

describeCluster('startRedisCluster', () => {
  it('starts masters with a replica each, ok on every node; failover swaps a pair; stop removes every node and file', async () => {
    const handle = await startRedisCluster({ masters: 1 });
    const [master, replica] = handle.nodes.map((node) => new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    for (const client of [master, replica]) client.on('error', () => {});
    try {
      const infos = await Promise.all([master, replica].map(async (client) => String(await client.cluster('INFO'))));
      const roles = await Promise.all([master, replica].map(async (client) => ((await client.call('ROLE')) as string[])[0]));
      const executables = await Promise.all([master, replica].map(async (client) => /executable:(.*)\r/.exec(await client.info('server'))?.[1]));

      const failover = await handle.failover();
      const rolesAfter = await Promise.all([master, replica].map(async (client) => ((await client.call('ROLE')) as string[])[0]));

      expect(handle.nodes).toHaveLength(2);
      for (const info of infos) expect(info).toMatch(/cluster_state:ok[\s\S]*cluster_slots_assigned:16384[\s\S]*cluster_known_nodes:2/);
      expect(roles).toEqual(['master', 'slave']);
      // Every node runs the binary this run chose (REDIS_SERVER_BIN, else PATH), by the path given.
      expect(executables).toEqual([findServerBinary()!.path, findServerBinary()!.path]);
      expect(failover).toMatchObject({ from: handle.nodes[0], to: handle.nodes[1] });
      expect(Number.isFinite(failover.durationMs)).toBe(true);
      expect(rolesAfter).toEqual(['slave', 'master']);
      expect(existsSync(handle.dir)).toBe(true);
    } finally {
      master.disconnect();
      replica.disconnect();
      await handle.stop();
    }

    expect(existsSync(handle.dir)).toBe(false);
    for (const node of handle.nodes) expect(await dial(node.host, node.port)).toBe('ECONNREFUSED');
    await handle.stop(); // twice is fine
  });
});

describe('redisClusterSupport', () => {
  it('takes the binary REDIS_SERVER_BIN names, and says why it cannot when that is no server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-dual-write-bin-'));
    const saved = process.env.REDIS_SERVER_BIN;
    try {
      const server = join(dir, 'chosen-server');
      const checker = join(dir, 'redis-check-rdb');
      symlinkSync(findServerBinary()!.path, server);
      symlinkSync(findServerBinary()!.path, checker);

      process.env.REDIS_SERVER_BIN = server;
      const chosen = redisClusterSupport();
      process.env.REDIS_SERVER_BIN = checker;
      const refused = redisClusterSupport();
      process.env.REDIS_SERVER_BIN = join(dir, 'missing');
      const missing = redisClusterSupport();

      expect(chosen).toEqual({ supported: true, binary: server });
      expect(refused).toEqual({ supported: false, reason: expect.stringMatching(/^\S+redis-check-rdb is not a Redis or Valkey server: .*link named valkey-server or redis-server/) });
      expect(missing).toEqual({ supported: false, reason: `REDIS_SERVER_BIN=${join(dir, 'missing')} is not an executable file` });
    } finally {
      if (saved === undefined) delete process.env.REDIS_SERVER_BIN;
      else process.env.REDIS_SERVER_BIN = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says where to get a binary when there is none', () => {
    const saved = { PATH: process.env.PATH, REDIS_SERVER_BIN: process.env.REDIS_SERVER_BIN };
    process.env.PATH = '/nonexistent';
    delete process.env.REDIS_SERVER_BIN;
    try {
      expect(redisClusterSupport()).toEqual({
        supported: false,
        reason: 'no redis-server on PATH and no REDIS_SERVER_BIN (a cluster needs a server binary, not REDIS_URL)',
      });
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.REDIS_SERVER_BIN !== undefined) process.env.REDIS_SERVER_BIN = saved.REDIS_SERVER_BIN;
    }
  });
});

/** What a TCP connection attempt ends in: 'connected' or the error code. */
function dial(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
  });
}
