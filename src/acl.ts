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
  'type', 'exists', 'get', 'set', 'time', 'hget', 'hmget', 'hgetall', 'hset', 'hdel', 'rpush', 'lpos', 'lrem',
  // a repair copies a record's absolute expiry with it
  'pexpiretime', 'pexpireat',
  'zadd', 'zcount', 'zrange', 'zrem', 'zrevrank', 'zscore',
  // what claim and recoverStalled read before calling their scripts
  'lrange', 'zrangebyscore',
  // how an ioredis Cluster client learns which node holds which slot (a standalone server refuses
  // it harmlessly)
  'cluster|slots',
] as const;

/**
 * The key patterns of the default layout under a key prefix: the jobs, the workspaces' keys, the
 * queues, and the layout's own (the stage record every managed script reads, the heartbeats).
 */
export function serviceKeyPatterns(keyPrefix = ''): string[] {
  return ['job:*', 'ws:*', 'queue:*', 'dualwrite:*'].map((pattern) => `~${keyPrefix}${pattern}`);
}

/** ACL SETUSER rules for a service user: `ACL SETUSER <name> on ><password> ...serviceAclRules()`. */
export function serviceAclRules(keyPrefix = ''): string[] {
  return ['resetkeys', ...serviceKeyPatterns(keyPrefix), '-@all', ...SERVICE_COMMANDS.map((command) => `+${command}`)];
}
