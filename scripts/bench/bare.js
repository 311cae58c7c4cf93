// The bare scripts: each does the work of one package operation with nothing else, no type, ACL,
// duplicate or stage check, so it is the layout's own limit for that operation and the baseline of
// the Targets table. They write the same keys, fields and values as the package (created_at and
// updated_at come from the client: none calls TIME). docs/BENCHMARKS.md prints their bodies.
const { randomUUID } = require('node:crypto');

const IDEMPOTENCY_TTL = 86400;
// The package stores "<fingerprint>:<jobId>" under an idempotency key: a fingerprint is 32 hex digits.
const FINGERPRINT = 'f'.repeat(32);

/** The fields of a new job as the package writes them; idempotency_key only when a key is given. */
function jobFields(jobId, workspaceId, type, payloadJson, nowMs, idempotencyKey) {
  const fields = ['id', jobId, 'workspace_id', workspaceId, 'type', type, 'payload', payloadJson,
    'status', 'queued', 'created_at', nowMs, 'updated_at', nowMs];
  return idempotencyKey === undefined ? fields : [...fields, 'idempotency_key', idempotencyKey];
}

const SCRIPTS = {
  enqueue: {
    what: 'enqueue, one job: GET idem, HSET legacy, HSET new, RPUSH, ZADD, SET idem EX',
    body: `#!lua
-- KEYS: idempotency key, job:<id>, ws:<ws>:job:<id>, queue:<name>, ws:<ws>:jobs
-- ARGV: jobId, workspaceId, type, payload, created_at (ms, from the client), idempotency key, "<fingerprint>:<jobId>", TTL
local remembered = redis.call('GET', KEYS[1])
if remembered then return remembered end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'workspace_id', ARGV[2], 'type', ARGV[3], 'payload', ARGV[4], 'status', 'queued', 'created_at', ARGV[5], 'updated_at', ARGV[5], 'idempotency_key', ARGV[6])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'workspace_id', ARGV[2], 'type', ARGV[3], 'payload', ARGV[4], 'status', 'queued', 'created_at', ARGV[5], 'updated_at', ARGV[5], 'idempotency_key', ARGV[6])
redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('SET', KEYS[1], ARGV[7], 'EX', ARGV[8])
return 1`,
  },
  enqueueBatch: {
    what: 'enqueue, a batch: the enqueue script\'s six commands for each job, in one script',
    body: `#!lua
-- KEYS: queue:<name>, then per job: idempotency key, job:<id>, ws:<ws>:job:<id>, ws:<ws>:jobs
-- ARGV: created_at (ms, from the client), TTL, then per job: jobId, workspaceId, type, payload, idempotency key, "<fingerprint>:<jobId>"
local now, ttl = ARGV[1], ARGV[2]
for i = 1, (#KEYS - 1) / 4 do
  local k, a = 4 * i - 2, 6 * i - 3
  if not redis.call('GET', KEYS[k]) then
    redis.call('HSET', KEYS[k + 1], 'id', ARGV[a], 'workspace_id', ARGV[a + 1], 'type', ARGV[a + 2], 'payload', ARGV[a + 3], 'status', 'queued', 'created_at', now, 'updated_at', now, 'idempotency_key', ARGV[a + 4])
    redis.call('HSET', KEYS[k + 2], 'id', ARGV[a], 'workspace_id', ARGV[a + 1], 'type', ARGV[a + 2], 'payload', ARGV[a + 3], 'status', 'queued', 'created_at', now, 'updated_at', now, 'idempotency_key', ARGV[a + 4])
    redis.call('RPUSH', KEYS[1], ARGV[a])
    redis.call('ZADD', KEYS[k + 3], now, ARGV[a])
    redis.call('SET', KEYS[k], ARGV[a + 5], 'EX', ttl)
  end
end
return 1`,
  },
  updateStatus: {
    what: 'updateStatus in live, queued to running: HGET status (new), HGET claim, HSET legacy, HSET new, LREM queue',
    body: `#!lua
-- KEYS: job:<id>, ws:<ws>:job:<id> (the read origin in live), queue:<name>:claims, queue:<name>
-- ARGV: status, updated_at (ms, from the client), the job's queue entry (its bare jobId while the legacy layout is written)
local previous = redis.call('HGET', KEYS[2], 'status')
redis.call('HGET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
redis.call('HSET', KEYS[2], 'status', ARGV[1], 'updated_at', ARGV[2])
if previous == 'queued' then redis.call('LREM', KEYS[4], 1, ARGV[3]) end
return previous`,
  },
  getJob: {
    what: 'getJob in live: HGETALL new, HGETALL legacy',
    body: `#!lua flags=no-writes
-- KEYS: ws:<ws>:job:<id> (the read origin in live), job:<id> (read to compare)
-- Returns the read origin's fields, as the package returns one record.
local new = redis.call('HGETALL', KEYS[1])
redis.call('HGETALL', KEYS[2])
return new`,
  },
};

/** Loads every bare script; returns { name: sha1 }. */
async function loadBare(redis) {
  const shas = {};
  for (const [name, { body }] of Object.entries(SCRIPTS)) shas[name] = String(await redis.script('LOAD', body));
  return shas;
}

/** One job of the bare enqueue's batch: the keys and arguments for job number i. */
function bareJob(i, wsOf) {
  const jobId = randomUUID();
  const ws = wsOf(i);
  return { jobId, ws, idemKey: `ws:${ws}:idem:k${i}`, idemValue: `${FINGERPRINT}:${jobId}` };
}

module.exports = { SCRIPTS, loadBare, bareJob, jobFields, IDEMPOTENCY_TTL, FINGERPRINT };
