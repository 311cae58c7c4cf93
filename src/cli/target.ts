import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { UsageError } from './io';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

interface Endpoint {
  host: string;
  port: number;
}

/**
 * What a command connects to, decided from the flags before anything is sent: one server (--url or
 * $REDIS_URL) or a cluster (--cluster seeds), how (TLS or not), as whom, and how long to wait.
 */
export interface Target {
  kind: 'server' | 'cluster';
  /** The server, or the cluster's seeds. */
  endpoints: Endpoint[];
  username?: string;
  password?: string;
  /** A server's database number from the URL's path. */
  db?: number;
  /** Present exactly when the target was named rediss://: never a cleartext fallback. */
  tls?: ConnectionOptions;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** How messages name the target: the password never appears. */
  shown: string;
}

type FlagValue = string | boolean | string[] | undefined;
type Flags = Readonly<Record<string, FlagValue>>;

const TLS_FLAGS = ['tls-ca', 'tls-cert', 'tls-key', 'tls-servername'] as const;

/** The target the flags name; anything it could not secure, or cannot honour, is a UsageError. */
export function targetFor(flags: Flags, env: Record<string, string | undefined>): Target {
  const timeouts = {
    connectTimeoutMs: milliseconds('--connect-timeout', flags['connect-timeout']) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeoutMs: milliseconds('--command-timeout', flags['command-timeout']) ?? DEFAULT_COMMAND_TIMEOUT_MS,
  };
  const target = typeof flags.cluster === 'string' ? clusterTarget(flags, flags.cluster) : serverTarget(text(flags.url) ?? env.REDIS_URL ?? DEFAULT_URL);
  const tls = tlsOptions(flags, target.tls === true);
  const { tls: _secure, ...rest } = target;
  return { ...rest, ...timeouts, ...(tls ? { tls } : {}) };
}

interface Parsed {
  kind: 'server' | 'cluster';
  endpoints: Endpoint[];
  username?: string;
  password?: string;
  db?: number;
  tls: boolean;
  shown: string;
}

function serverTarget(url: string): Parsed {
  const parsed = parseRedisUrl(url, '--url');
  return {
    kind: 'server',
    endpoints: [{ host: parsed.host, port: parsed.port }],
    ...credentials(parsed),
    ...(parsed.db !== undefined ? { db: parsed.db } : {}),
    tls: parsed.tls,
    shown: showUrl(parsed),
  };
}

/** `--cluster host:port,...` or redis:// / rediss:// items; a bare host:port takes the others' scheme. */
function clusterTarget(flags: Flags, list: string): Parsed {
  if (flags.url !== undefined) throw new UsageError('--url and --cluster name different targets: give one');
  const items = list.split(',').map((item) => item.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError('--cluster needs at least one host:port');
  const seeds = items.map((item) => (item.includes('://') ? parseRedisUrl(item, '--cluster') : { ...parseHostPort(item), tls: undefined }));
  const schemes = new Set(seeds.map((seed) => seed.tls).filter((tls) => tls !== undefined));
  if (schemes.size > 1) {
    throw new UsageError(
      '--cluster mixes redis:// and rediss:// seeds: a cluster client reaches every node the same way, ' +
        'so some would be cleartext. Name every seed rediss:// (TLS), or none.',
    );
  }
  const withCredentials = seeds.filter((seed): seed is ParsedUrl => 'password' in seed || 'username' in seed);
  const distinct = new Set(withCredentials.map((seed) => JSON.stringify([seed.username, seed.password])));
  if (distinct.size > 1) {
    throw new UsageError('--cluster seeds carry different credentials: one user reaches every node, so give it once');
  }
  if (seeds.some((seed) => 'db' in seed && seed.db !== undefined && seed.db !== 0)) {
    throw new UsageError('--cluster: a Redis Cluster has only database 0; leave the path out of the seed URLs');
  }
  return {
    kind: 'cluster',
    endpoints: seeds.map(({ host, port }) => ({ host, port })),
    ...(withCredentials[0] ? credentials(withCredentials[0]) : {}),
    tls: schemes.has(true),
    shown: `the cluster seeded by ${seeds.map((seed) => hostPort(seed)).join(',')}`,
  };
}

interface ParsedUrl extends Endpoint {
  tls: boolean;
  username?: string;
  password?: string;
  db?: number;
}

/**
 * A redis:// or rediss:// URL, parsed here rather than by the client so that TLS is decided by one
 * rule (the scheme) and nothing in the URL is silently ignored.
 */
function parseRedisUrl(url: string, flag: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${flag}: ${maskUrl(url)} is not a redis:// or rediss:// URL`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new UsageError(`${flag}: ${maskUrl(url)} is not a redis:// or rediss:// URL`);
  }
  if (!parsed.hostname) throw new UsageError(`${flag}: ${maskUrl(url)} names no host`);
  if (parsed.search || parsed.hash) {
    throw new UsageError(`${flag}: ${maskUrl(url)} has query parameters; the command takes its options as flags (see --help)`);
  }
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) throw new UsageError(`${flag}: the path of ${maskUrl(url)} must be a database number`);
  return {
    tls: parsed.protocol === 'rediss:',
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(path !== '' ? { db: Number(path) } : {}),
  };
}

function parseHostPort(item: string): Endpoint {
  if (item.includes('@')) throw new UsageError('--cluster: give credentials in a URL, redis://user:password@host:port (or rediss://)');
  const match = /^(.+):(\d{1,5})$/.exec(item);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) throw new UsageError(`--cluster: ${item} is not host:port`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) };
}

function credentials(parsed: { username?: string; password?: string }): { username?: string; password?: string } {
  return {
    ...(parsed.username !== undefined ? { username: parsed.username } : {}),
    ...(parsed.password !== undefined ? { password: parsed.password } : {}),
  };
}

/**
 * The TLS options of a rediss:// target. Every TLS flag without TLS is refused: the connection would
 * be cleartext and the operator would believe otherwise.
 */
function tlsOptions(flags: Flags, secure: boolean): ConnectionOptions | undefined {
  const given = TLS_FLAGS.filter((flag) => flags[flag] !== undefined);
  if (!secure) {
    if (given.length > 0) {
      throw new UsageError(`--${given[0]} is for TLS, but the target is not rediss://: name it rediss://host:port to connect with TLS`);
    }
    return undefined;
  }
  if ((flags['tls-cert'] === undefined) !== (flags['tls-key'] === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together: the client certificate and its private key');
  }
  const servername = text(flags['tls-servername']);
  if (servername === '') throw new UsageError('--tls-servername needs a name');
  return {
    ...(flags['tls-ca'] !== undefined ? { ca: readPem('--tls-ca', flags['tls-ca']) } : {}),
    ...(flags['tls-cert'] !== undefined ? { cert: readPem('--tls-cert', flags['tls-cert']) } : {}),
    ...(flags['tls-key'] !== undefined ? { key: readPem('--tls-key', flags['tls-key']) } : {}),
    ...(servername !== undefined ? { servername } : {}),
  };
}

function readPem(flag: string, path: FlagValue): Buffer {
  try {
    return readFileSync(String(path));
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${String(path)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function milliseconds(flag: string, value: FlagValue): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000) {
    throw new UsageError(`${flag} must be a whole number of milliseconds from 1 to 3600000, got ${String(value)}`);
  }
  return n;
}

function text(value: FlagValue): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function hostPort({ host, port }: Endpoint): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function showUrl(parsed: ParsedUrl): string {
  const user = parsed.username ?? '';
  const userinfo = parsed.password !== undefined ? `${user}:***@` : user ? `${user}@` : '';
  return `${parsed.tls ? 'rediss' : 'redis'}://${userinfo}${hostPort(parsed)}${parsed.db !== undefined ? `/${parsed.db}` : ''}`;
}

/** A URL as text with its password replaced by ***, parseable or not. */
export function maskUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  // No scheme: whatever comes before an @ may be user:password.
  if (start < 3) return url.includes('@') ? `***${url.slice(url.lastIndexOf('@'))}` : url;
  try {
    if (!new URL(url).password) return url;
  } catch {
    // Not a URL: hide whatever sits between :// and the last @, where a password would be.
    return url.replace(/(:\/\/[^:@/]*:)[^]*@/, '$1***@');
  }
  // As the URL parser reads it: the authority ends at the first / ? # or \, the user info at its last @.
  const rest = url.slice(start);
  const end = rest.search(/[/?#\\]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  const user = authority.slice(0, at).split(':')[0];
  return `${url.slice(0, start)}${user}:***${authority.slice(at)}${rest.slice(authority.length)}`;
}

/**
 * The command line as typed, with the password of every --url and --cluster value replaced by ***,
 * for the "run it again" hint; `masked` names the flags whose value hid one.
 */
export function commandLineShown(argv: readonly string[]): { words: string[]; masked: Set<'--url' | '--cluster'> } {
  const masked = new Set<'--url' | '--cluster'>();
  const mask = (flag: '--url' | '--cluster', value: string): string => {
    const items = flag === '--cluster' ? value.split(',') : [value];
    const shown = items.map(maskUrl);
    if (shown.some((item, i) => item !== items[i])) masked.add(flag);
    return shown.join(',');
  };
  const words = argv.map((word, i) => {
    const inline = /^(--url|--cluster)=(.*)$/s.exec(word);
    if (inline) return `${inline[1]}=${mask(inline[1] as '--url' | '--cluster', inline[2])}`;
    const flag = argv[i - 1];
    return flag === '--url' || flag === '--cluster' ? mask(flag, word) : word;
  });
  return { words, masked };
}
