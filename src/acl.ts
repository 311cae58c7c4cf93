/**
 * What an ioredis client sends on its own with its default options, standalone or Cluster:
 * - `info`: the ready check of every connection (enableReadyCheck; refused, ioredis warns on the
 *   console and goes on, but no longer waits out a server still loading its data);
 * - `cluster|slots`: how a Cluster client learns which node serves which slot;
 * - `cluster|info`: a Cluster client's ready check (refused, the client never gets ready);
 * - `client|setname`: a Cluster client names the connection that refreshes its slot map;
 * - `readonly`: a Cluster client's connections to replicas.
 * A standalone server refuses the cluster commands harmlessly. ioredis also sends CLIENT SETINFO
 * (Redis 7.2+) and ignores its refusal: the rules cannot name it, as Redis 7.0 does not know it.
 */
export const IOREDIS_DEFAULT_COMMANDS = ['info', 'cluster|slots', 'cluster|info', 'client|setname', 'readonly'] as const;

/**
 * What a Redis ACL user needs to run the queue: the key patterns of the layout and the commands.
 * Redis checks ACLs for every command a script runs, so the list holds the scripts' inner commands
 * too; a test keeps it equal to what lua/ calls.
 */
export const SERVICE_COMMANDS = [
  // calling the scripts: EVAL resends a script after NOSCRIPT; SCRIPT EXISTS lets ready() check a
  // deploy user's preload when this user may not run SCRIPT LOAD
  'evalsha', 'eval', 'script|exists',
  // what the service scripts run inside
  'type', 'exists', 'get', 'set', 'time', 'hget', 'hgetall', 'hset', 'hdel', 'rpush', 'lpos', 'lrem',
  'zadd', 'zcount', 'zrange', 'zrem', 'zrevrank', 'zscore',
  // what claim and recoverStalled read before calling their scripts
  'lrange', 'zrangebyscore',
  // the client's own (INFO is also what ready() reads to check the version and maxmemory-policy)
  ...IOREDIS_DEFAULT_COMMANDS,
] as const;

/** The key patterns of the default layout under a key prefix. */
export function serviceKeyPatterns(keyPrefix = ''): string[] {
  return ['job:*', 'ws:*', 'queue:*'].map((pattern) => `~${keyPrefix}${pattern}`);
}

/** ACL SETUSER rules for a service user: `ACL SETUSER <name> on ><password> ...serviceAclRules()`. */
export function serviceAclRules(keyPrefix = ''): string[] {
  return ['resetkeys', ...serviceKeyPatterns(keyPrefix), '-@all', ...SERVICE_COMMANDS.map((command) => `+${command}`)];
}
