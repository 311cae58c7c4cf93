import { connect, createServer, type Server, type Socket } from 'node:net';
import { commandName, RespSplitter } from './resp';

/**
 * A TCP proxy between a Redis client and a Redis server, both on loopback, that injects the faults
 * a network brings: a reply lost after Redis ran the command, every connection cut, Redis
 * unreachable for a while, latency. Every fault is bounded in count and time and ends by itself,
 * and the proxy closes itself after its lifetime, so a test that forgets it cannot hang a run.
 */
export interface FaultProxyOptions {
  /** The Redis to forward to: redis://127.0.0.1:<port> (loopback only). */
  target: string;
  /** The proxy closes itself after this long whatever happens; default 10 minutes. */
  lifetimeMs?: number;
}

export interface DropRepliesOptions {
  /** Only replies to these commands are dropped (lower case, e.g. ['evalsha', 'eval']); default any. */
  commands?: readonly string[];
  /** The chance that a matching reply is dropped, 0..1; default 1 (the next matching replies). */
  share?: number;
  /** The budget lapses after this long even when not spent; default 30 s, at most 10 minutes. */
  withinMs?: number;
  /** A source of numbers in [0, 1) for `share`; pass a seeded one to make a run repeatable. */
  random?: () => number;
}

export interface ReplyDrop {
  /** Replies dropped so far by this call. */
  readonly dropped: number;
  /** Settles with the number dropped once the count is spent, the window lapsed or stop() was called. */
  readonly done: Promise<number>;
  /** Drops no more; returns the number dropped. */
  stop(): number;
}

export interface FaultProxyStats {
  connections: number;
  commands: number;
  repliesForwarded: number;
  repliesDropped: number;
  connectionsCut: number;
}

export interface FaultProxy {
  /** redis://127.0.0.1:<port>: give it to the client instead of the server's URL. */
  readonly url: string;
  readonly port: number;
  stats(): FaultProxyStats;
  /**
   * Drops the replies of the next `count` matching commands after Redis ran them, then cuts that
   * client's connection: over TCP a lost reply means a dead connection (Redis replies carry no
   * request ids, so a client on a live connection would pair every later reply with the wrong call).
   */
  dropReplies(count: number, options?: DropRepliesOptions): ReplyDrop;
  /** Closes every open connection now, both sides; returns how many were cut. */
  cutConnections(): number;
  /**
   * Redis is unreachable for `forMs` (at most 10 minutes): open connections are cut and the proxy
   * stops listening, so connecting fails with ECONNREFUSED, as for a server that is down. Calling
   * it again with 0 ends the outage. Settles once the proxy refuses, or listens again for 0.
   */
  refuseConnections(forMs: number): Promise<void>;
  /**
   * Holds every chunk `latencyMs` (at most 60 s) in each direction, for `forMs` (at most 10 minutes).
   * Chunks already held keep their order; cutConnections() discards them.
   */
  addLatency(latencyMs: number, forMs: number): void;
  /** Stops listening, cuts every connection and cancels every fault. Safe to call twice. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const MAX_WINDOW_MS = 10 * 60_000;
const MAX_LATENCY_MS = 60_000;

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (!LOOPBACK.has(target.hostname)) {
    throw new Error(`the fault proxy only forwards to loopback, not ${target.hostname}`);
  }
  const targetHost = target.hostname.replace(/^\[|\]$/g, '');
  const targetPort = Number(target.port || 6379);
  const stats: FaultProxyStats = {
    connections: 0,
    commands: 0,
    repliesForwarded: 0,
    repliesDropped: 0,
    connectionsCut: 0,
  };
  const pairs = new Set<Pair>();
  const drops = new Set<ArmedDrop>();
  let refusing: NodeJS.Timeout | undefined;
  let latencyMs = 0;
  let latencyUntil = 0;
  let closed = false;

  const currentLatency = () => (Date.now() < latencyUntil ? latencyMs : 0);

  /** Whether this reply is one to drop; spends the budget of the drop that takes it. */
  const takeDrop = (command: string): boolean => {
    for (const drop of drops) {
      if (Date.now() > drop.until) {
        drop.finish();
        continue;
      }
      if (drop.commands && !drop.commands.has(command)) continue;
      if (drop.share < 1 && drop.random() >= drop.share) continue;
      drop.take();
      return true;
    }
    return false;
  };

  const server: Server = createServer((client) => {
    if (closed) {
      client.destroy();
      return;
    }
    stats.connections++;
    const upstream = connect({ host: targetHost, port: targetPort });
    const pair = new Pair(client, upstream, currentLatency);
    pairs.add(pair);
    const forget = () => {
      pair.destroy();
      pairs.delete(pair);
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);

    // Requests pass at once; they are parsed only to know which command each later reply answers.
    const requests = new RespSplitter();
    const waiting: string[] = [];
    client.on('data', (chunk: Buffer) => {
      pair.toUpstream.send(chunk);
      for (const request of requests.push(chunk)) {
        waiting.push(commandName(request));
        stats.commands++;
      }
    });
    const replies = new RespSplitter();
    upstream.on('data', (chunk: Buffer) => {
      for (const reply of replies.push(chunk)) {
        if (pair.destroyed) return;
        if (reply[0] === 0x3e /* '>' push */) {
          pair.toClient.send(reply);
          continue;
        }
        const command = waiting.shift() ?? '';
        if (takeDrop(command)) {
          stats.repliesDropped++;
          stats.connectionsCut++;
          forget();
          return;
        }
        stats.repliesForwarded++;
        pair.toClient.send(reply);
      }
    });
  });

  const listen = (onPort: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const cutConnections = () => {
    const cut = pairs.size;
    for (const pair of pairs) pair.destroy();
    pairs.clear();
    stats.connectionsCut += cut;
    return cut;
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    clearTimeout(lifetime);
    clearTimeout(refusing);
    for (const drop of drops) drop.finish();
    for (const pair of pairs) pair.destroy();
    pairs.clear();
    if (server.listening) await stopListening();
  };
  const refuseConnections = async (forMs: number): Promise<void> => {
    const outage = bounded('forMs', forMs, MAX_WINDOW_MS);
    clearTimeout(refusing);
    if (closed) return;
    if (outage === 0) {
      if (!server.listening) await listen(port);
      return;
    }
    cutConnections();
    refusing = setTimeout(() => void refuseConnections(0).catch(() => {}), outage);
    refusing.unref();
    if (server.listening) server.close();
  };
  const lifetime = setTimeout(() => void close(), options.lifetimeMs ?? MAX_WINDOW_MS);
  lifetime.unref();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stats: () => ({ ...stats }),
    dropReplies(count, dropOptions = {}) {
      checkCount('count', count);
      const share = dropOptions.share ?? 1;
      if (!(share > 0 && share <= 1)) throw new RangeError('share must be in (0, 1]');
      const drop = new ArmedDrop(
        count,
        Date.now() + bounded('withinMs', dropOptions.withinMs ?? 30_000, MAX_WINDOW_MS),
        dropOptions.commands ? new Set(dropOptions.commands.map((c) => c.toLowerCase())) : undefined,
        share,
        dropOptions.random ?? Math.random,
        () => drops.delete(drop),
      );
      if (closed) drop.finish();
      else drops.add(drop);
      return drop;
    },
    cutConnections,
    refuseConnections,
    addLatency(ms, forMs) {
      latencyMs = bounded('latencyMs', ms, MAX_LATENCY_MS);
      latencyUntil = Date.now() + bounded('forMs', forMs, MAX_WINDOW_MS);
    },
    close,
  };
}

/** One client connection and its own connection to Redis. */
class Pair {
  readonly toUpstream: Delivery;
  readonly toClient: Delivery;
  destroyed = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    latency: () => number,
  ) {
    this.toUpstream = new Delivery(upstream, latency);
    this.toClient = new Delivery(client, latency);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.toUpstream.cancel();
    this.toClient.cancel();
    this.client.destroy();
    this.upstream.destroy();
  }
}

/** Writes chunks to a socket in order, each no earlier than the latency in force when it arrived. */
class Delivery {
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly latency: () => number,
  ) {}

  send(chunk: Buffer): void {
    const delay = this.latency();
    if (delay === 0 && this.queue.length === 0) {
      this.socket.write(chunk);
      return;
    }
    const last = this.queue[this.queue.length - 1]?.at ?? 0;
    this.queue.push({ at: Math.max(Date.now() + delay, last), chunk });
    this.schedule();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.queue.length > 0 && this.queue[0].at <= Date.now()) {
        if (!this.socket.destroyed) this.socket.write(this.queue.shift()!.chunk);
        else this.queue.shift();
      }
      this.schedule();
    }, Math.max(0, this.queue[0].at - Date.now()));
    this.timer.unref();
  }
}

class ArmedDrop implements ReplyDrop {
  dropped = 0;
  readonly done: Promise<number>;
  private resolve!: (dropped: number) => void;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly count: number,
    readonly until: number,
    readonly commands: Set<string> | undefined,
    readonly share: number,
    readonly random: () => number,
    private readonly onFinish: () => void,
  ) {
    this.done = new Promise((resolve) => (this.resolve = resolve));
    // The window lapses on its own even when no reply passes to notice it.
    this.timer = setTimeout(() => this.finish(), Math.max(0, until - Date.now()));
    this.timer.unref();
  }

  take(): void {
    this.dropped++;
    if (this.dropped >= this.count) this.finish();
  }

  stop(): number {
    this.finish();
    return this.dropped;
  }

  finish(): void {
    clearTimeout(this.timer);
    this.onFinish();
    this.resolve(this.dropped);
  }
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > 1_000_000) {
    throw new RangeError(`${name} must be an integer from 1 to 1000000`);
  }
}

function bounded(name: string, value: number, max: number): number {
  if (!Number.isFinite(value) || value < 0 || value > max) throw new RangeError(`${name} must be 0..${max} ms`);
  return value;
}
