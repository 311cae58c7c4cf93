/**
 * What an ioredis client sends on its own with its default options, standalone or Cluster, to any
 * server from 7.0 on:
 * - `info`: the ready check of every connection (enableReadyCheck; refused, ioredis warns on the
 *   console and goes on, but no longer waits out a server still loading its data);
 * - `cluster|slots`: how a Cluster client learns which node serves which slot;
 * - `cluster|info`: a Cluster client's ready check (refused, the client never gets ready);
 * - `client|setname`: a Cluster client names the connection that refreshes its slot map;
 * - `readonly`: a Cluster client's connections to replicas.
 * A standalone server refuses the cluster commands harmlessly. From 7.2 on it also sends CLIENT
 * SETINFO (IOREDIS_SETINFO_COMMAND).
 */
export const IOREDIS_DEFAULT_COMMANDS = ['info', 'cluster|slots', 'cluster|info', 'client|setname', 'readonly'] as const;

/**
 * What ioredis also sends, on every connection, to a server that answers version 7.2 or later
 * (Valkey answers 7.2.4): it ignores a refusal, but the ACL log records one. Redis 7.0 does not
 * know the command, so no rule may name it there.
 */
export const IOREDIS_SETINFO_COMMAND = 'client|setinfo';

export interface AclRuleOptions {
  /**
   * The server's `redis_version` (INFO server): from 7.2 on the rules also grant CLIENT SETINFO.
   * Left out, the rules are the ones every server from 7.0 on accepts.
   */
  serverVersion?: string;
}

/** The client's own commands for a server of this version. */
export function clientCommandsFor(serverVersion?: string): string[] {
  const [major, minor] = (serverVersion ?? '').split('.').map(Number);
  const knowsSetinfo = major > 7 || (major === 7 && minor >= 2);
  return [...IOREDIS_DEFAULT_COMMANDS, ...(knowsSetinfo ? [IOREDIS_SETINFO_COMMAND] : [])];
}

/**
 * What a Redis ACL user needs to run the queue: the key patterns of the layout and the commands.
 * Redis checks ACLs for every command a script runs, so the list holds the scripts' inner commands
 * too. Tests keep it equal to what the code sends: test/unit/manifest.test.ts reads lua/, and
 * test/faults/access-control.test.ts captures every command of every operation with MONITOR.
 */
export const SERVICE_COMMANDS = [
  // calling the scripts: EVAL resends a script after NOSCRIPT; SCRIPT EXISTS lets ready() check a
  // deploy user's preload when this user may not run SCRIPT LOAD
  'evalsha', 'eval', 'script|exists',
  // what the service scripts run inside
  'type', 'exists', 'get', 'set', 'time', 'hget', 'hmget', 'hgetall', 'hset', 'hdel', 'rpush', 'lpos', 'lrem', 'llen',
  // deleteJob removes a job's records and its idempotency key; a refused enqueue undoes its writes with it (and lrem)
  'del',
  // a repair copies a record's absolute expiry with it; retention sets one, requeue lifts it
  'pexpiretime', 'pexpireat', 'persist',
  'zadd', 'zcount', 'zrange', 'zrem', 'zrevrank', 'zscore',
  // what claim and recoverStalled read before calling their scripts
  'lrange', 'zrangebyscore',
  // the client's own (INFO is also what ready() reads to check the version and maxmemory-policy)
  ...IOREDIS_DEFAULT_COMMANDS,
] as const;

/**
 * The key patterns of the default layout under a key prefix: the jobs, the workspaces' keys, the
 * queues, and the layout's own (the stage record every managed script reads, the heartbeats).
 */
export function serviceKeyPatterns(keyPrefix = ''): string[] {
  return [
    ...LAYOUT_PATTERNS.map((pattern) => `~${keyPrefix}${pattern}`),
    // The stage record, which every managed script reads. Only the migration user moves the stage,
    // but a read-only rule (%R~) cannot say so: Redis checks a script's KEYS as keys it writes.
    `~${keyPrefix}dualwrite:stage`,
    // the heartbeats; not the stage history or the backfill checkpoint, which only the tools touch
    `~${keyPrefix}dualwrite:instances*`,
  ];
}

/** The jobs, the indexes and idempotency keys, the queues. */
const LAYOUT_PATTERNS = ['job:*', 'ws:*', 'queue:*'];

/** ACL SETUSER rules for a service user: `ACL SETUSER <name> on ><password> ...serviceAclRules()`. */
export function serviceAclRules(keyPrefix = '', options: AclRuleOptions = {}): string[] {
  return ['resetkeys', ...serviceKeyPatterns(keyPrefix), '-@all', ...commandRules(SERVICE_COMMANDS, options)];
}

function commandRules(commands: readonly string[], { serverVersion }: AclRuleOptions): string[] {
  const extra = clientCommandsFor(serverVersion).filter((command) => !commands.includes(command));
  return [...commands, ...extra].map((command) => `+${command}`);
}

/**
 * What a Redis ACL user needs to run the migration tools (the command's scripts load and check,
 * stage init, stage set, status, backfill, verify and cleanup, and the Migration class): the
 * commands they send, their scripts' inner commands included. test/migrate/tools-acl.test.ts and
 * test/cluster/access-control.test.ts capture what every tool sends with MONITOR and hold this list
 * equal to it.
 */
export const MIGRATION_COMMANDS = [
  // calling the migration's scripts (EVAL after NOSCRIPT); loading every script (scripts load, and
  // ready() before each run) and checking them (scripts check)
  'evalsha', 'eval', 'script|load', 'script|exists',
  // what backfill_batch, compare_layouts and cleanup_legacy_batch run inside (a copy keeps its
  // record's absolute expiry; a resync aligns it, or removes it); HGETALL, HSET, DEL and TYPE also
  // keep the backfill checkpoint; HMGET reads the legacy records a walk judges
  'type', 'hget', 'hmget', 'hgetall', 'hset', 'del', 'pexpiretime', 'pexpireat', 'persist', 'zadd', 'zscore',
  // walking each server's keys and the indexes, reading the queue and the processing set (cleanup's
  // bare entries), and, inside verify's scripts, pages of the queue, the processing set and the
  // claims (claim_consistency_page) and entries that seem orphaned (confirm_orphans)
  'scan', 'exists', 'lrange', 'lpos', 'zrange', 'hexists', 'hscan',
  // stage control: a transition (set_stage) stamps the record with the server's TIME (compare_layouts
  // reads it too, to know whether retention's time for a job has come) and pushes it
  // onto the bounded history; a step records its result (record_run) and raises the record's
  // revision and cleanup count; after a transition, WAIT for a replica of the record's master (sent
  // only when it has one); status reads the heartbeats by age and the history (LRANGE, above)
  'time', 'lpush', 'ltrim', 'hincrby', 'wait', 'zrangebyscore',
  // stage config removes a setting from the record (a status's retention taken away)
  'hdel',
  // the client's own (INFO is also how ready() checks the server, a backfill knows a restarted one
  // and a transition finds the record's replicas)
  ...IOREDIS_DEFAULT_COMMANDS,
] as const;

/**
 * The migration tools' key patterns: the layout's, and all of `dualwrite:*`: the stage record they
 * write, its history, the heartbeats status reads, the backfill checkpoint.
 */
export function migrationKeyPatterns(keyPrefix = ''): string[] {
  return [...LAYOUT_PATTERNS, 'dualwrite:*'].map((pattern) => `~${keyPrefix}${pattern}`);
}

/**
 * ACL SETUSER rules for the user the migration tools run as: `ACL SETUSER <name> on ><password>
 * ...migrationAclRules()`. Under clusterLayout(tag) the prefix is `{tag}:`.
 */
export function migrationAclRules(keyPrefix = '', options: AclRuleOptions = {}): string[] {
  return ['resetkeys', ...migrationKeyPatterns(keyPrefix), '-@all', ...commandRules(MIGRATION_COMMANDS, options)];
}
