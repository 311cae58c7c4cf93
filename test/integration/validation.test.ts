import fc from 'fast-check';
import type Redis from 'ioredis';
import { DualWriteQueue, JOB_ID_PATTERN, ValidationError, type DualWriteQueueOptions } from '../../src';
import { makeQueue, useRedis } from '../support/redis';
import { jobHash, redisState } from '../support/state';

const ctx = useRedis();

/** Server-side call counts per command from INFO commandstats, e.g. { evalsha: 3, 'script|load': 4 }. */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]] = Number(match[2]);
  return calls;
}

/** The commands that run a script: none of them may be counted for refused input. */
const SCRIPT_COMMANDS = ['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'] as const;
function scriptCalls(calls: Record<string, number>): Record<string, number> {
  return Object.fromEntries(SCRIPT_COMMANDS.map((name) => [name, calls[name] ?? 0]));
}

/** Every command counted between two snapshots, leaving out the INFO that took the first snapshot. */
function callsBetween(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const sent: Record<string, number> = {};
  for (const [name, count] of Object.entries(after)) {
    if (name !== 'info' && count !== (before[name] ?? 0)) sent[name] = count - (before[name] ?? 0);
  }
  return sent;
}

async function outcomeOf(act: () => unknown): Promise<unknown> {
  try {
    return await act();
  } catch (error) {
    return error;
  }
}

/**
 * Acts once and proves the act was refused as bad input before Redis heard of it: a ValidationError
 * with the field and rule, no command at all counted by the server (scripts named explicitly), and
 * the whole database as it was.
 */
async function expectRefusedBeforeRedis(act: () => unknown, field: string, rule: string): Promise<void> {
  const before = await redisState(ctx.redis);
  const callsBefore = await commandCalls(ctx.redis);

  const outcome = await outcomeOf(act);

  const callsAfter = await commandCalls(ctx.redis);
  expect(outcome).toBeInstanceOf(ValidationError);
  expect(outcome).toMatchObject({ code: 'VALIDATION', field, rule });
  expect(scriptCalls(callsAfter)).toEqual(scriptCalls(callsBefore));
  expect(callsBetween(callsBefore, callsAfter)).toEqual({});
  expect(await redisState(ctx.redis)).toEqual(before);
}

let queue: DualWriteQueue;

// Existing state that a stray write would change: one job in both layouts, its queue entry, its index
// entry and its idempotency key. The key's TTL is removed so a ticking second cannot fail a comparison.
beforeEach(async () => {
  ({ queue } = await makeQueue(ctx.redis, 'dualwrite'));
  await queue.enqueue({ workspaceId: 'acme', type: 'email.send', payload: { n: 1 }, jobId: 'seed', idempotencyKey: 'seed-key' });
  await ctx.redis.persist('ws:acme:idem:seed-key');
});

type IdCall = (q: DualWriteQueue, value: unknown) => Promise<unknown>;

/** Calls that would write (or at least run a script) if their input were accepted. */
const WORKSPACE_ID_CALLS: [string, IdCall][] = [
  ['enqueue', (q, workspaceId) => q.enqueue({ workspaceId: workspaceId as never, type: 't', payload: 1, jobId: 'fresh' })],
  ['updateStatus', (q, workspaceId) => q.updateStatus({ workspaceId: workspaceId as never, jobId: 'seed', status: 'running' })],
  ['getJob', (q, workspaceId) => q.getJob({ workspaceId: workspaceId as never, jobId: 'seed' })],
  ['listJobs', (q, workspaceId) => q.listJobs({ workspaceId: workspaceId as never })],
];
const JOB_ID_CALLS: [string, IdCall][] = [
  ['enqueue', (q, jobId) => q.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: jobId as never })],
  ['updateStatus', (q, jobId) => q.updateStatus({ workspaceId: 'acme', jobId: jobId as never, status: 'running' })],
  ['getJob', (q, jobId) => q.getJob({ workspaceId: 'acme', jobId: jobId as never })],
];

/** [what, value, rule]: values outside ^[A-Za-z0-9_-]{1,64}$. */
const BAD_IDS: [string, unknown, string][] = [
  ['empty', '', 'format'],
  ['65 characters', 'a'.repeat(65), 'format'],
  ["':' (key collisions)", 'a:b', 'format'],
  ["'{ }' (cluster hash tag)", 'a{b}', 'format'],
  ["'*' (glob)", 'a*', 'format'],
  ["'?' (glob)", 'a?', 'format'],
  ["'[ ]' (glob)", 'a[1]', 'format'],
  ["'\\' (glob escape)", 'a\\b', 'format'],
  ['a space', 'a b', 'format'],
  ['a non-ASCII letter', 'é', 'format'],
  ['a newline', '\n', 'format'],
  ['a trailing newline', 'abc\n', 'format'],
  ['a number', 42, 'type'],
  ['null', null, 'type'],
];
/** A workspace id takes no '.'; a job id does (legacy stores write "order.1042"). */
const BAD_WORKSPACE_IDS: [string, unknown, string][] = [...BAD_IDS, ["'.'", 'a.b', 'format']];

/** Every call crossed with every value: [call name, what the value is, call, value, rule]. */
function rows(calls: [string, IdCall][], values: [string, unknown, string][]): [string, string, IdCall, unknown, string][] {
  return calls.flatMap(([name, call]) => values.map(([what, value, rule]): [string, string, IdCall, unknown, string] => [name, what, call, value, rule]));
}

describe('ids that go into key names (workspaceId ^[A-Za-z0-9_-]{1,64}$, jobId ^[A-Za-z0-9._-]{1,64}$)', () => {
  it.each(rows(WORKSPACE_ID_CALLS, [...BAD_WORKSPACE_IDS, ['undefined', undefined, 'type']]))(
    '%s refuses a workspaceId that is %s',
    async (_name, _what, call, value, rule) => {
      await expectRefusedBeforeRedis(() => call(queue, value), 'workspaceId', rule);
    },
  );

  // enqueue's jobId is optional: undefined and null there mean "not given", so a UUID is made.
  const GIVEN_BAD_IDS = BAD_IDS.filter(([, value]) => value !== null);
  it.each(rows(JOB_ID_CALLS, GIVEN_BAD_IDS))('%s refuses a jobId that is %s', async (_name, _what, call, value, rule) => {
    await expectRefusedBeforeRedis(() => call(queue, value), 'jobId', rule);
  });

  it.each(rows(JOB_ID_CALLS.slice(1), [['null', null, 'type'], ['undefined', undefined, 'type']]))(
    '%s refuses a jobId that is %s (it is required there)',
    async (_name, _what, call, value, rule) => {
      await expectRefusedBeforeRedis(() => call(queue, value), 'jobId', rule);
    },
  );

  it('accepts 64-character ids, and dots in a job id, through every call', async () => {
    const workspaceId = `W${'x'.repeat(61)}_-`;
    const jobId = `J${'y'.repeat(60)}.-_`;
    expect([workspaceId.length, jobId.length]).toEqual([64, 64]);
    const before = await redisState(ctx.redis);

    expect(await queue.enqueue({ workspaceId, jobId, type: 't', payload: 1 })).toEqual({ jobId, created: true });
    expect(await queue.updateStatus({ workspaceId, jobId, status: 'running' })).toMatchObject({ jobId, status: 'running' });
    const job = await queue.getJob({ workspaceId, jobId });
    expect(job).toMatchObject({ id: jobId, workspaceId, status: 'running', payload: 1 });
    expect((await queue.listJobs({ workspaceId })).jobs.map((j) => j.id)).toEqual([jobId]);

    const record = jobHash({ ...job!, payload: 1 });
    expect(await redisState(ctx.redis)).toEqual({
      ...before,
      [`job:${jobId}`]: record,
      [`ws:${workspaceId}:job:${jobId}`]: record,
      // Started outside the queue's workers, the job left the queue.
      'queue:default': { type: 'list', value: ['seed'] },
      [`ws:${workspaceId}:jobs`]: { type: 'zset', value: [[jobId, job!.createdAt]] },
    });
  });

  describe('property: any string outside the id pattern', () => {
    const badId = fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
        fc.string({ unit: fc.constantFrom(...'ab-_:{}*?[]\\ .\n\t\u0000é'.split('')), maxLength: 70 }),
        fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '-'), minLength: 65, maxLength: 100 }),
      )
      // Outside the job id pattern is outside the workspace id pattern too (it only adds '.').
      .filter((s) => !JOB_ID_PATTERN.test(s));

    it('is refused by enqueue, getJob and updateStatus before Redis: no key, no script call', async () => {
      const before = await redisState(ctx.redis);
      const keyCount = await ctx.redis.dbsize();
      expect(keyCount).toBe(5);

      await fc.assert(
        fc.asyncProperty(
          badId,
          fc.constantFrom('workspaceId' as const, 'jobId' as const),
          fc.constantFrom('enqueue', 'getJob', 'updateStatus'),
          async (bad, field, operation) => {
            const ids = { workspaceId: 'acme', jobId: 'seed', [field]: bad } as { workspaceId: string; jobId: string };
            const callsBefore = await commandCalls(ctx.redis);

            const outcome = await outcomeOf(() =>
              operation === 'enqueue'
                ? queue.enqueue({ ...ids, type: 't', payload: 1 })
                : operation === 'getJob'
                  ? queue.getJob(ids)
                  : queue.updateStatus({ ...ids, status: 'running' }),
            );

            const callsAfter = await commandCalls(ctx.redis);
            expect(outcome).toBeInstanceOf(ValidationError);
            expect(outcome).toMatchObject({ code: 'VALIDATION', field, rule: 'format' });
            expect(scriptCalls(callsAfter)).toEqual(scriptCalls(callsBefore));
            expect(await ctx.redis.dbsize()).toBe(keyCount);
          },
        ),
        { numRuns: 200 },
      );

      expect(await redisState(ctx.redis)).toEqual(before);
    });
  });
});

describe('idempotencyKey (^[A-Za-z0-9._:-]{1,200}$)', () => {
  it.each<[string, unknown, string]>([
    ['empty', '', 'format'],
    ['201 characters', 'k'.repeat(201), 'format'],
    ['a space', 'a b', 'format'],
    ["'/'", 'a/b', 'format'],
    ["'{ }'", 'a{b}', 'format'],
    ["'*'", 'a*', 'format'],
    ['a non-ASCII letter', 'é', 'format'],
    ['a newline', 'k\n', 'format'],
    ['a number', 42, 'type'],
  ])('refuses one that is %s', async (_what, idempotencyKey, rule) => {
    await expectRefusedBeforeRedis(
      () => queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotencyKey: idempotencyKey as never }),
      'idempotencyKey',
      rule,
    );
  });

  it("accepts 200 characters including '.', ':', '-' and '_'", async () => {
    const idempotencyKey = `order.2024:eu-west_${'k'.repeat(181)}`;
    expect(idempotencyKey).toHaveLength(200);

    const result = await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotencyKey, jobId: 'j' });

    expect(result).toEqual({ jobId: 'j', created: true });
    expect(await ctx.redis.get(`ws:acme:idem:${idempotencyKey}`)).toMatch(/^[0-9a-f]{32}:j$/);
  });
});

describe('type (^[A-Za-z0-9._:-]{1,100}$)', () => {
  it.each<[string, unknown, string]>([
    ['empty', '', 'format'],
    ['101 characters', 't'.repeat(101), 'format'],
    ['a space', 'email send', 'format'],
    ["'/'", 'email/send', 'format'],
    ["'{ }'", 'a{b}', 'format'],
    ["'*'", 'a*', 'format'],
    ['a non-ASCII letter', 'é', 'format'],
    ['a number', 42, 'type'],
    ['undefined', undefined, 'type'],
  ])('refuses one that is %s', async (_what, type, rule) => {
    await expectRefusedBeforeRedis(
      () => queue.enqueue({ workspaceId: 'acme', type: type as never, payload: 1 }),
      'type',
      rule,
    );
  });

  it("accepts 100 characters including '.', ':', '-' and '_'", async () => {
    const type = `email.send:v2-eu_${'t'.repeat(83)}`;
    expect(type).toHaveLength(100);

    await queue.enqueue({ workspaceId: 'acme', type, payload: 1, jobId: 'j' });

    expect(await queue.getJob({ workspaceId: 'acme', jobId: 'j' })).toMatchObject({ type });
  });
});

describe('status and expectedStatus (queued, running, succeeded, failed, cancelled)', () => {
  const BAD_STATUSES: [string, unknown][] = [
    ["'done'", 'done'],
    ["'QUEUED'", 'QUEUED'],
    ["' queued'", ' queued'],
    ['empty', ''],
    ['a number', 1],
  ];

  it.each([...BAD_STATUSES, ['undefined', undefined], ['null', null]])(
    'updateStatus refuses status %s',
    async (_what, status) => {
      await expectRefusedBeforeRedis(
        () => queue.updateStatus({ workspaceId: 'acme', jobId: 'seed', status: status as never }),
        'status',
        'status',
      );
    },
  );

  it.each(BAD_STATUSES)('updateStatus refuses expectedStatus %s', async (_what, expectedStatus) => {
    await expectRefusedBeforeRedis(
      () => queue.updateStatus({ workspaceId: 'acme', jobId: 'seed', status: 'running', expectedStatus: expectedStatus as never }),
      'expectedStatus',
      'status',
    );
  });

  it.each(BAD_STATUSES)('listJobs refuses a status filter %s', async (_what, status) => {
    await expectRefusedBeforeRedis(() => queue.listJobs({ workspaceId: 'acme', status: status as never }), 'status', 'status');
  });
});

describe('listJobs limit and cursor', () => {
  it.each<[string, unknown]>([
    ['0', 0],
    ['1001', 1001],
    ['1.5', 1.5],
    ["'10'", '10'],
  ])('refuses limit %s', async (_what, limit) => {
    await expectRefusedBeforeRedis(() => queue.listJobs({ workspaceId: 'acme', limit: limit as never }), 'limit', 'range');
  });

  it.each<[string, unknown]>([
    ['text that is no cursor', 'garbage'],
    ['a cursor naming a bad job id', Buffer.from('1:a*b').toString('base64url')],
    ['a number', 42],
  ])('refuses a cursor that is %s', async (_what, cursor) => {
    await expectRefusedBeforeRedis(() => queue.listJobs({ workspaceId: 'acme', cursor: cursor as never }), 'cursor', 'format');
  });
});

describe('payload: must survive a JSON round trip unchanged', () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const cyclicObject: Record<string, unknown> = { a: 1 };
  cyclicObject.self = cyclicObject;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push(cyclicArray);
  // eslint-disable-next-line no-sparse-arrays
  const sparse = [1, , 3];

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a BigInt', BigInt(1)],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['an object cycle', cyclicObject],
    ['an array cycle', cyclicArray],
    ['a nested undefined value', { a: { b: undefined } }],
    ['undefined inside an array', [1, undefined]],
    ['a nested function', { a: [{ f() {} }] }],
    ['a nested NaN', { a: [1, NaN] }],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a class instance', new Point(1, 2)],
    ['a boxed string', new String('a')],
    ['a sparse array', sparse],
    ['an object with a symbol key', { [Symbol('k')]: 1 }],
    ['an array with a named property', Object.assign([1, 2], { extra: 'lost' })],
  ])('refuses %s with rule json', async (_what, payload) => {
    await expectRefusedBeforeRedis(() => queue.enqueue({ workspaceId: 'acme', type: 't', payload }), 'payload', 'json');
  });

  it('refuses a missing payload field with rule json', async () => {
    await expectRefusedBeforeRedis(
      () => queue.enqueue({ workspaceId: 'acme', type: 't' } as never),
      'payload',
      'json',
    );
  });

  const deep: Record<string, unknown> = { leaf: ['end', 1.5, null, true] };
  let deepest = deep;
  for (let i = 0; i < 300; i++) deepest = { level: i, child: [deepest] };

  it.each<[string, unknown]>([
    ['null', null],
    ['0', 0],
    ["''", ''],
    ['[]', []],
    ['{}', {}],
    ['false', false],
    ['a deeply nested but finite object', deepest],
    ['one object reached twice without a cycle', { a: deep, b: deep }],
  ])('accepts %s and reads it back unchanged', async (_what, payload) => {
    const { jobId } = await queue.enqueue({ workspaceId: 'acme', type: 't', payload });

    expect((await queue.getJob({ workspaceId: 'acme', jobId }))?.payload).toEqual(payload);
    expect(await ctx.redis.hget(`ws:acme:job:${jobId}`, 'payload')).toBe(JSON.stringify(payload));
    expect(await ctx.redis.hget(`job:${jobId}`, 'payload')).toBe(JSON.stringify(payload));
  });

  describe('maxPayloadBytes counts UTF-8 bytes of the JSON, not characters', () => {
    // JSON '"ééé"' is 5 characters and 8 bytes; '"éééé"' is 6 characters and 10 bytes: a limit of 8
    // that counted characters would take both.
    it.each<[string, unknown, number]>([
      ['8 ASCII bytes', 'abcdef', 8],
      ["'ééé' (8 bytes, 5 characters)", 'ééé', 8],
      ["'👋' (6 bytes, 3 characters)", '👋', 6],
      ['an object of exactly 8 bytes', { é: 1 }, 8],
    ])('accepts %s: exactly at a limit of 8 passes', async (_what, payload, bytes) => {
      expect(Buffer.byteLength(JSON.stringify(payload), 'utf8')).toBe(bytes);
      const { queue: small } = await makeQueue(ctx.redis, 'dualwrite', { maxPayloadBytes: 8 });

      const { jobId } = await small.enqueue({ workspaceId: 'acme', type: 't', payload });

      expect((await small.getJob({ workspaceId: 'acme', jobId }))?.payload).toEqual(payload);
    });

    it.each<[string, unknown, number, number]>([
      ['9 ASCII bytes', 'abcdefg', 9, 9],
      ["'éééé' (10 bytes, only 6 characters)", 'éééé', 10, 6],
      ["'👋👋' (10 bytes, only 6 UTF-16 units)", '👋👋', 10, 6],
      ["'€€€' (11 bytes, only 5 characters)", '€€€', 11, 5],
    ])('refuses %s of JSON over a limit of 8 with rule max-bytes', async (_what, payload, bytes, units) => {
      const json = JSON.stringify(payload);
      expect([Buffer.byteLength(json, 'utf8'), json.length]).toEqual([bytes, units]);
      const { queue: small } = await makeQueue(ctx.redis, 'dualwrite', { maxPayloadBytes: 8 });

      await expectRefusedBeforeRedis(() => small.enqueue({ workspaceId: 'acme', type: 't', payload }), 'payload', 'max-bytes');
    });
  });
});

describe('input shape', () => {
  it.each<[string, (q: DualWriteQueue) => Promise<unknown>, string]>([
    ["updateStatus with 'expectStatus' (a typo of expectedStatus)", (q) => q.updateStatus({ workspaceId: 'acme', jobId: 'seed', status: 'running', expectStatus: 'failed' } as never), 'input.expectStatus'],
    ["enqueue with 'idempotency_key'", (q) => q.enqueue({ workspaceId: 'acme', type: 't', payload: 1, idempotency_key: 'k' } as never), 'input.idempotency_key'],
    ["getJob with 'stage'", (q) => q.getJob({ workspaceId: 'acme', jobId: 'seed', stage: 'live' } as never), 'input.stage'],
    ["listJobs with 'statuses'", (q) => q.listJobs({ workspaceId: 'acme', statuses: ['queued'] } as never), 'input.statuses'],
  ])('refuses an unknown field: %s', async (_what, call, field) => {
    await expectRefusedBeforeRedis(() => call(queue), field, 'unknown-field');
  });

  const CALLS: [string, (q: DualWriteQueue, input: unknown) => Promise<unknown>][] = [
    ['enqueue', (q, input) => q.enqueue(input as never)],
    ['updateStatus', (q, input) => q.updateStatus(input as never)],
    ['getJob', (q, input) => q.getJob(input as never)],
    ['listJobs', (q, input) => q.listJobs(input as never)],
  ];
  const NOT_OBJECTS: [string, unknown][] = [
    ['null', null],
    ['a string', 'acme'],
    ['an array', ['acme']],
    ['undefined', undefined],
  ];
  it.each(CALLS.flatMap(([name, call]) => NOT_OBJECTS.map(([what, input]) => [name, what, call, input] as const)))(
    '%s refuses input that is %s',
    async (_name, _what, call, input) => {
      await expectRefusedBeforeRedis(() => call(queue, input), 'input', 'type');
    },
  );
});

describe('stages', () => {
  it.each<[string, unknown]>([
    ["'bogus'", 'bogus'],
    ["'DUALWRITE'", 'DUALWRITE'],
    ['undefined', undefined],
  ])('the constructor refuses stage %s', async (_what, stage) => {
    await expectRefusedBeforeRedis(
      () => new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: stage as never, metrics: false }),
      'stage',
      'stage',
    );
  });

  it.each<[string, unknown]>([
    ["'bogus'", 'bogus'],
    ["'Live'", 'Live'],
    ['null', null],
  ])('setStage refuses %s and keeps the stage it had', async (_what, stage) => {
    await expectRefusedBeforeRedis(() => queue.setStage(stage as never), 'stage', 'stage');

    expect(queue.stage).toBe('dualwrite');
    // Writes still follow dualwrite: both layouts.
    await queue.enqueue({ workspaceId: 'acme', type: 't', payload: 1, jobId: 'after' });
    expect(await ctx.redis.exists('job:after', 'ws:acme:job:after')).toBe(2);
  });
});

describe('constructor options', () => {
  const valid = (): DualWriteQueueOptions => ({ redis: ctx.redis, stage: 'dualwrite', metrics: false });

  it.each<[string, () => unknown, string, string]>([
    ["queueName 'a:b'", () => ({ ...valid(), queueName: 'a:b' }), 'queueName', 'format'],
    ["queueName 'a{b}'", () => ({ ...valid(), queueName: 'a{b}' }), 'queueName', 'format'],
    ['an empty queueName', () => ({ ...valid(), queueName: '' }), 'queueName', 'format'],
    ['a queueName that is a number', () => ({ ...valid(), queueName: 1 }), 'queueName', 'type'],
    ["keyPrefix 'a*'", () => ({ ...valid(), keyPrefix: 'a*' }), 'keyPrefix', 'format'],
    ["keyPrefix 'a b'", () => ({ ...valid(), keyPrefix: 'a b' }), 'keyPrefix', 'format'],
    ['a keyPrefix of 65 characters', () => ({ ...valid(), keyPrefix: 'p'.repeat(65) }), 'keyPrefix', 'format'],
    ['idempotencyTtlSeconds 0', () => ({ ...valid(), idempotencyTtlSeconds: 0 }), 'idempotencyTtlSeconds', 'range'],
    ['idempotencyTtlSeconds 1.5', () => ({ ...valid(), idempotencyTtlSeconds: 1.5 }), 'idempotencyTtlSeconds', 'range'],
    ['idempotencyTtlSeconds -1', () => ({ ...valid(), idempotencyTtlSeconds: -1 }), 'idempotencyTtlSeconds', 'range'],
    ["idempotencyTtlSeconds '60'", () => ({ ...valid(), idempotencyTtlSeconds: '60' }), 'idempotencyTtlSeconds', 'range'],
    ['maxPayloadBytes 0', () => ({ ...valid(), maxPayloadBytes: 0 }), 'maxPayloadBytes', 'range'],
    ['maxPayloadBytes 1.5', () => ({ ...valid(), maxPayloadBytes: 1.5 }), 'maxPayloadBytes', 'range'],
    ['a missing redis', () => ({ stage: 'dualwrite', metrics: false }), 'redis', 'type'],
    ['a redis that is no client', () => ({ ...valid(), redis: {} }), 'redis', 'type'],
    ["an unknown option 'prefix'", () => ({ ...valid(), prefix: 'x:' }), 'options.prefix', 'unknown-field'],
    ["an unknown option 'queuename' (wrong case)", () => ({ ...valid(), queuename: 'q' }), 'options.queuename', 'unknown-field'],
    ['metrics without a prom-client registry', () => ({ ...valid(), metrics: { registry: {} } }), 'metrics', 'type'],
    ['metrics: true', () => ({ ...valid(), metrics: true }), 'metrics', 'type'],
    ['a logger without warn', () => ({ ...valid(), logger: { debug() {}, info() {}, error() {} } }), 'logger', 'type'],
    ['options that are null', () => null, 'options', 'type'],
    ['options that are a string', () => 'redis://127.0.0.1', 'options', 'type'],
  ])('refuses %s', async (_what, options, field, rule) => {
    await expectRefusedBeforeRedis(() => new DualWriteQueue(options() as never), field, rule);
  });

  it('accepts the edges of each option', () => {
    const edge = new DualWriteQueue({
      ...valid(),
      queueName: `q.${'n'.repeat(60)}_-`,
      keyPrefix: '{jobs}:',
      idempotencyTtlSeconds: 1,
      maxPayloadBytes: 2,
    });
    expect(edge.queueName).toHaveLength(64);
    expect(edge.stage).toBe('dualwrite');
  });
});

describe('the probe', () => {
  it('sees a script call: a valid getJob between two snapshots counts one EVALSHA', async () => {
    expect(ctx.handle.url).not.toMatch(/:6379$/);
    const callsBefore = await commandCalls(ctx.redis);

    await queue.getJob({ workspaceId: 'acme', jobId: 'seed' });

    const callsAfter = await commandCalls(ctx.redis);
    // commandstats also counts the commands a script runs with redis.call, so the other probe sees those too.
    expect(callsBetween(callsBefore, callsAfter)).toMatchObject({ evalsha: 1 });
    expect(scriptCalls(callsAfter).evalsha).toBe(scriptCalls(callsBefore).evalsha + 1);
  });
});
