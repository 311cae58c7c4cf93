import type { Cluster } from 'ioredis';
import { PermissionError, RedisUnavailableError } from '../errors';
import { translateRedisError } from '../scripts/replies';

/**
 * What an ioredis Cluster client sends on its own before it is ready, and why an ACL user needs it.
 * A refusal of either leaves the client retrying forever without saying why.
 */
const START_COMMANDS = {
  'CLUSTER SLOTS': { rule: '+cluster|slots', why: 'to learn which node serves which slot' },
  'CLUSTER INFO': { rule: '+cluster|info', why: 'to check the cluster is ok before it calls itself ready (enableReadyCheck)' },
} as const;
type StartCommand = keyof typeof START_COMMANDS;

/**
 * Waits until the client has read the slot map and passed its ready check, without sending a
 * command of its own when all goes well (an ACL user may not run PING); a lazy client is connected,
 * as its first command would connect it. When the client cannot start because the ACL user may not
 * run one of its start commands, fails with a PermissionError naming it: the client itself only
 * retries in silence, which would look like Redis being away.
 */
export async function untilReady(cluster: Cluster): Promise<void> {
  if (cluster.status === 'ready') return;
  if (cluster.status === 'end') throw new RedisUnavailableError('the cluster client is closed');
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    let probe: Promise<PermissionError | undefined> | undefined;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      cluster.off('ready', onReady).off('end', onEnd).off('node error', onNodeError).off('connect', onConnect);
      if (error) reject(error);
      else resolve();
    };
    // A failure to start is reported as the refusal behind it when the probe found one.
    const fail = (error: Error) => void (probe ?? Promise.resolve(undefined)).then((refusal) => settle(refusal ?? error));
    const onReady = () => settle();
    const onEnd = () => fail(new RedisUnavailableError('the cluster client closed before it was ready'));
    // The client reports a node that refused its CLUSTER SLOTS, then tries the next.
    const onNodeError = (error: unknown) => {
      const refusal = startRefusal('CLUSTER SLOTS', error);
      if (refusal) settle(refusal);
    };
    // The slot map is read and the client sends its ready check, whose refusal it keeps to itself:
    // ask the same question on a connection of our own, which only answers when it is refused.
    const onConnect = () => {
      if (cluster.options.enableReadyCheck && !probe) {
        probe = probeReadyCheck(cluster);
        void probe.then((refusal) => refusal && settle(refusal));
      }
    };
    cluster.on('ready', onReady).on('end', onEnd).on('node error', onNodeError).on('connect', onConnect);
    if (cluster.status === 'wait') cluster.connect().catch((error: Error) => fail(error));
    else if (cluster.status === 'connect') onConnect();
  });
}

/** CLUSTER INFO as the client's ready check sends it, on a connection of its own to a node the client knows. */
async function probeReadyCheck(cluster: Cluster): Promise<PermissionError | undefined> {
  const [node] = cluster.nodes('master');
  if (!node) return undefined;
  const connection = node.duplicate({ enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0, lazyConnect: true });
  connection.on('error', () => {});
  try {
    await connection.cluster('INFO');
    return undefined;
  } catch (error) {
    return startRefusal('CLUSTER INFO', error);
  } finally {
    connection.disconnect();
  }
}

function startRefusal(command: StartCommand, error: unknown): PermissionError | undefined {
  if (!(translateRedisError(error) instanceof PermissionError)) return undefined;
  const { rule, why } = START_COMMANDS[command];
  return new PermissionError(
    command,
    `the Redis user may not run ${command}, which the ioredis Cluster client sends ${why}: grant ${rule} ` +
      '(serviceAclRules() and migrationAclRules() include it)',
    error,
  );
}
