/**
 * The cluster harness itself (redis-dual-write/testing): the cluster it starts is whole and ok on
 * every node, a failover hands a master's slots to its replica, and stop() leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import Redis from 'ioredis';
import { startRedisCluster } from '../../src/testing';
import { describeCluster } from '../support/cluster';

describeCluster('startRedisCluster', () => {
  it('starts masters with a replica each, ok on every node; failover swaps a pair; stop removes every node and file', async () => {
    const handle = await startRedisCluster({ masters: 1 });
    const [master, replica] = handle.nodes.map((node) => new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    for (const client of [master, replica]) client.on('error', () => {});
    try {
      const infos = await Promise.all([master, replica].map(async (client) => String(await client.cluster('INFO'))));
      const roles = await Promise.all([master, replica].map(async (client) => ((await client.call('ROLE')) as string[])[0]));

      const failover = await handle.failover();
      const rolesAfter = await Promise.all([master, replica].map(async (client) => ((await client.call('ROLE')) as string[])[0]));

      expect(handle.nodes).toHaveLength(2);
      for (const info of infos) expect(info).toMatch(/cluster_state:ok[\s\S]*cluster_slots_assigned:16384[\s\S]*cluster_known_nodes:2/);
      expect(roles).toEqual(['master', 'slave']);
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
