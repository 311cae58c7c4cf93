import { performance } from 'node:perf_hooks';
import Redis, { Cluster } from 'ioredis';
import { isCluster } from '../cluster/nodes';
import { untilReady } from '../cluster/ready';
import { PermissionError } from '../errors';
import { authenticationFailure, CommandFailure, isAuthenticationError } from './failure';
import type { Target } from './target';

/**
 * A client for one command run, not connected until `connect()`. Every command it sends gives up
 * after the command timeout: the migration's batches are bounded, so a silent server is the only
 * way one could take that long, and a deploy gate must not hang on it.
 */
export function createClient(target: Target): Redis | Cluster {
  const perConnection = {
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    // From the scheme alone: a rediss:// target is TLS on every connection, or not reached at all.
    ...(target.tls ? { tls: target.tls } : {}),
    connectTimeout: target.connectTimeoutMs,
    commandTimeout: target.commandTimeoutMs,
    maxRetriesPerRequest: 2,
    // disconnect() arms this timer even for a socket that never opened: keep it short so a
    // failed command does not linger.
    disconnectTimeout: 100,
    // No CLIENT SETINFO: after a refused AUTH the client still queues it on the dead connection,
    // where its command timer would keep the finished command alive for the whole timeout.
    disableClientInfo: true,
  };
  if (target.kind === 'cluster') {
    const cluster = new Cluster(target.endpoints, {
      lazyConnect: true,
      clusterRetryStrategy: (attempt) => (attempt > 3 ? null : attempt * 200),
      slotsRefreshTimeout: target.connectTimeoutMs,
      redisOptions: perConnection,
    });
    // Errors reach the caller through the rejected command; the event would only be logged twice.
    cluster.on('error', () => {});
    return cluster;
  }
  const [{ host, port }] = target.endpoints;
  const redis = new Redis({
    host,
    port,
    ...(target.db !== undefined ? { db: target.db } : {}),
    ...perConnection,
    lazyConnect: true,
    retryStrategy: (attempt) => (attempt > 3 ? null : attempt * 200),
  });
  redis.on('error', () => {});
  return redis;
}

/**
 * Connects and waits until the client is usable, within the connect timeout. The client's own
 * connectTimeout ends at the TCP connect: a server that accepts the connection and then never
 * answers would hold the handshake (AUTH, the ready check, the cluster's slot map) forever, so the
 * whole of it is bounded here. A cluster client is ready only once it has the slot map and has
 * passed its ready check (CLUSTER INFO): untilReady reports a refused start command as the refusal,
 * which the client itself only retries in silence. A failure says what went wrong in the
 * operator's terms.
 */
export async function connect(client: Redis | Cluster, target: Target): Promise<void> {
  const startedAt = performance.now();
  const seen: { error: Error; node?: string }[] = [];
  const onError = (error: Error) => seen.push({ error });
  const onNodeError = (error: Error, node: string) => seen.push({ error, node });
  // A cluster client that got this far has the slot map: what is left is its ready check.
  let gotSlotMap = false;
  const onSlotMap = () => void (gotSlotMap = true);
  client.on('error', onError);
  if (isCluster(client)) client.on('node error', onNodeError).on('connect', onSlotMap);
  let timer: NodeJS.Timeout | undefined;
  const connecting = isCluster(client) ? untilReady(client) : client.connect();
  // Past the deadline nobody awaits it; its rejection is expected and already recorded.
  connecting.catch(() => {});
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), target.connectTimeoutMs);
  });
  try {
    const outcome = await Promise.race([connecting.then(() => 'ready' as const), deadline]);
    if (outcome === 'timeout') {
      const status = client.status;
      client.disconnect();
      if (gotSlotMap && !seen.some(({ error }) => isAuthenticationError(error))) throw notReadyFailure(target, 'timeout');
      throw connectFailure(seen, target, status);
    }
  } catch (error) {
    if (error instanceof CommandFailure) throw error;
    client.disconnect();
    if (error instanceof PermissionError) {
      throw new CommandFailure('NO_PERMISSION', `Redis at ${target.shown} refused a command the cluster client needs to connect: ${error.message}`, {
        cause: error,
      });
    }
    const failure = connectFailure([...seen, { error: error as Error }], target);
    const left = target.connectTimeoutMs - (performance.now() - startedAt);
    if (failure.code !== 'REDIS_UNAVAILABLE' || target.kind !== 'cluster') throw failure;
    if (gotSlotMap) throw notReadyFailure(target, left >= 1 ? await clusterStateOf({ ...target, connectTimeoutMs: Math.ceil(left) }) : undefined);
    if (left < 1) throw failure;
    throw (await seedFailure({ ...target, connectTimeoutMs: Math.ceil(left) })) ?? failure;
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
    if (isCluster(client)) client.off('node error', onNodeError).off('connect', onSlotMap);
  }
}

/**
 * A cluster that gave its slot map but never passed the client's ready check: CLUSTER INFO did not
 * say cluster_state:ok (a slot no master serves, say), so the client would retry forever. `state` is
 * what the first seed says of itself, when it could be asked in time; 'timeout' when the connect
 * timeout ran out first.
 */
function notReadyFailure(target: Target, state: string | 'timeout' | undefined): CommandFailure {
  const within = state === 'timeout' ? ` within ${target.connectTimeoutMs} ms (--connect-timeout)` : '';
  const said = state && state !== 'timeout' ? `: ${target.endpoints[0].host}:${target.endpoints[0].port} says ${state}` : '';
  return new CommandFailure(
    'CLUSTER_NOT_READY',
    `${target.shown} gave its slot map but did not pass the client's ready check${within}${said}; ` +
      'CLUSTER INFO must say cluster_state:ok, which needs every hash slot served by a reachable master (CLUSTER INFO and CLUSTER SLOTS on a node show which are not)',
  );
}

/** What the first seed says of the cluster's state (cluster_state, slots assigned), asked on a connection of its own. */
async function clusterStateOf(target: Target): Promise<string | undefined> {
  const [seed] = target.endpoints;
  const alone: Target = { ...target, kind: 'server', endpoints: [seed], shown: `${seed.host}:${seed.port}`, commandTimeoutMs: target.connectTimeoutMs };
  const probe = createClient(alone);
  try {
    await connect(probe, alone);
    const info = String(await probe.call('CLUSTER', 'INFO'));
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    const assigned = /cluster_slots_assigned:(\d+)/.exec(info)?.[1];
    if (!state) return undefined;
    return `cluster_state:${state}${assigned !== undefined ? ` with ${assigned} of 16384 slots assigned` : ''}`;
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}

/**
 * Why the first seed refuses a connection of its own, when it does, within what is left of the
 * connect timeout. A cluster client reads the slot map on a connection whose errors it swallows: a
 * refused certificate reaches the caller only as "None of startup nodes is available". The same
 * connection made alone says what went wrong.
 */
async function seedFailure(target: Target): Promise<CommandFailure | undefined> {
  const [seed] = target.endpoints;
  const alone: Target = { ...target, kind: 'server', endpoints: [seed], shown: `${seed.host}:${seed.port}` };
  const probe = createClient(alone);
  try {
    await connect(probe, alone);
    return undefined;
  } catch (error) {
    return error instanceof CommandFailure && error.code !== 'REDIS_UNAVAILABLE' && error.code !== 'TIMEOUT' ? error : undefined;
  } finally {
    probe.disconnect();
  }
}

/** The most telling of the errors met while connecting; `timedOutIn` the client's status at the deadline. */
function connectFailure(seen: readonly { error: Error; node?: string }[], target: Target, timedOutIn?: string): CommandFailure {
  const auth = seen.find(({ error }) => isAuthenticationError(error));
  if (auth) return authenticationFailure(auth.error, target);
  const notCluster = seen.find(({ error }) => /cluster support disabled/i.test(error.message));
  if (notCluster && target.kind === 'cluster') {
    const where = notCluster.node ?? target.shown;
    return new CommandFailure(
      'NOT_A_CLUSTER',
      `${where} is not a Redis Cluster (cluster support is disabled there): for a single server, use --url instead of --cluster`,
      { cause: notCluster.error },
    );
  }
  const refused = seen.find(({ error }) => error.message.startsWith('NOPERM'));
  if (refused) {
    return new CommandFailure(
      'NO_PERMISSION',
      `Redis at ${target.shown} refused a command the client needs to connect: ${refused.error.message}`,
      { cause: refused.error },
    );
  }
  const tls = seen.find(({ error }) => isTlsError(error));
  if (tls) {
    // OpenSSL's own errors carry a short reason beside a message full of source file names.
    const openssl = tls.error as { library?: string; reason?: string };
    const reason = (openssl.library && openssl.reason) || tls.error.message.trim();
    return new CommandFailure('TLS_FAILED', `TLS with ${tls.node ?? target.shown} failed: ${reason}; ${tlsAdvice(reason)}`, {
      cause: tls.error,
    });
  }
  const telling = seen.find(({ error }) => !GENERIC.some((generic) => error.message.startsWith(generic)));
  // The client's own timeouts, set to ours, may fire first: a cluster client gives up on a seed's
  // slot map saying only 'timeout'; a connection (TLS handshake included) not made in time ends in
  // ETIMEDOUT, which means what our deadline finds in status 'connecting'.
  const slotMapTimedOut = seen.some(({ error }) => error.message === 'timeout');
  const notConnected = seen.some(({ error }) => (error as NodeJS.ErrnoException).code === 'ETIMEDOUT');
  const stage = timedOutIn ?? (notConnected ? 'connecting' : undefined);
  if (stage !== undefined || slotMapTimedOut) {
    const accepted =
      stage === 'connect'
        ? ': it accepted the connection, then said nothing'
        : stage === 'connecting' && target.tls
          ? ': the TLS handshake did not complete (is that a TLS port?)'
          : '';
    const last = telling && !slotMapTimedOut && !notConnected ? `; last error: ${telling.error.message}` : '';
    return new CommandFailure(
      'TIMEOUT',
      `Redis at ${target.shown} did not answer within ${target.connectTimeoutMs} ms (--connect-timeout)${accepted}${last}`,
      { cause: telling?.error },
    );
  }
  // "Connection is closed" is generic only beside a better reason; alone it is the reason.
  const cause = telling ?? [...seen].reverse().find(({ error }) => error.message.startsWith('Connection is closed')) ?? seen[seen.length - 1];
  const reason = cause?.error.message ?? 'no answer';
  const what = target.kind === 'cluster' ? `no seed gave its slot map (last error: ${reason})` : reason;
  // A TLS-only server drops a cleartext connection without a word.
  const closed = /^Connection is closed|ECONNRESET/.test(reason) && !target.tls;
  const hint = !closed ? '' : target.kind === 'cluster' ? '; if the nodes speak only TLS, name the seeds rediss://' : '; if it speaks only TLS, name it rediss://';
  return new CommandFailure('REDIS_UNAVAILABLE', `cannot reach Redis at ${target.shown}: ${what}${hint}`, { cause: cause?.error });
}

/** What the client says when it gives up, whatever the reason: the reason is in an earlier error. */
const GENERIC = ['Connection is closed', 'None of startup nodes is available', 'Failed to refresh slots cache', 'Ready check failed'];

/** What the operator can change for a refused TLS connection; nothing is ever sent in cleartext instead. */
function tlsAdvice(reason: string): string {
  if (/altnames|hostname/i.test(reason)) {
    return "the server's certificate does not name the host connected to: pass --tls-servername <a name on the certificate>";
  }
  if (/self[- ]signed|unable to (get|verify)|certificate chain|unknown ca/i.test(reason)) {
    return "the server's certificate is not signed by a trusted CA: pass --tls-ca <the CA's certificate file>";
  }
  if (/certificate required|handshake failure/i.test(reason)) {
    return 'the server asks for a client certificate: pass --tls-cert <file> and --tls-key <file>';
  }
  return 'check --tls-ca, --tls-servername, --tls-cert and --tls-key';
}

function isTlsError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return (
    /^ERR_(TLS|SSL)_/.test(code) ||
    /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code) ||
    (error as { library?: string }).library === 'SSL routines' ||
    /before secure TLS connection was established/.test(error.message)
  );
}
