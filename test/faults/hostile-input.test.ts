/**
 * Scenario 6, hostile input, property-based (fast-check). Generated ids, payloads, statuses and
 * stages that must never reach a key name or a script: always a ValidationError naming the field,
 * with Redis untouched. Then random operation sequences across random stage changes, each answer
 * predicted by a model of the stage table, and the invariants checked at the end.
 */
import fc from 'fast-check';
import {
  DualWriteError,
  DualWriteQueue,
  ID_PATTERN,
  IDEMPOTENCY_KEY_PATTERN,
  JOB_STATUSES,
  JOB_TYPE_PATTERN,
  STAGES,
  ValidationError,
  type JobStatus,
  type Stage,
} from '../../src';
import { checkInvariants } from '../support/invariants';
import { QueueModel } from '../support/queue-model';
import { useRedis } from '../support/redis';
import { recordRow, scaled, SOAK } from '../support/soak';
import { redisState } from '../support/state';

const ctx = useRedis();
const MAX_PAYLOAD_BYTES = 256;

/** Strings outside a whitelist: separators, braces, globs, control characters, unicode, empty, oversized. */
const stringOutside = (pattern: RegExp, maxLength: number) =>
  fc
    .oneof(
      fc.string({ unit: fc.constantFrom(...':{}*?[]\\ \n\r\t\u0000\u007f/é'.split(''), 'a', '0'), maxLength: 20 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.constant(''),
      fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '-'), minLength: maxLength + 1, maxLength: maxLength + 50 }),
    )
    .filter((s) => !pattern.test(s));
/** Not a string at all; null and undefined are left out because they mean "not given" for optional fields. */
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.object({ maxDepth: 1 }), fc.array(fc.nat(), { maxLength: 3 }));

const cyclic = fc.dictionary(fc.string({ maxLength: 5 }), fc.nat(), { maxKeys: 3 }).map((o) => {
  const cycle: Record<string, unknown> = { ...o };
  cycle.self = { back: cycle };
  return cycle;
});
const hostilePayload = fc.oneof(
  fc.bigInt().map((amount) => ({ amount })),
  fc.constant(undefined),
  fc.func(fc.nat()),
  fc.constant(Symbol('job')),
  fc.constantFrom(NaN, Infinity, -Infinity, -0).map((n) => ({ n })),
  fc.array(fc.constantFrom(undefined, () => 1), { minLength: 1, maxLength: 3 }), // JSON would turn them into null
  fc.constantFrom(new Date(0), new Map([[1, 2]]), new Set([1]), /re/),
  cyclic,
  fc.string({ minLength: MAX_PAYLOAD_BYTES + 1, maxLength: MAX_PAYLOAD_BYTES + 100 }), // oversized JSON
  fc.constant('é'.repeat(MAX_PAYLOAD_BYTES / 2)), // under the limit in characters, over it in UTF-8 bytes
);
const badStatus = fc.oneof(
  fc.string({ maxLength: 12 }).filter((s) => !(JOB_STATUSES as readonly string[]).includes(s)),
  fc.constantFrom('QUEUED', ' running', 'succeeded\n', 'done'),
  notAString,
);
const badStage = fc.oneof(
  fc.string({ maxLength: 12 }).filter((s) => !(STAGES as readonly string[]).includes(s)),
  fc.constantFrom('LIVE', 'live ', 'dual-write', 'rollback'),
  notAString,
  fc.constant(undefined),
);

type Call = { field: string; call: (queue: DualWriteQueue, bad: unknown) => Promise<unknown> | unknown };
const ok = { workspaceId: 'acme', jobId: 'j1', type: 'report.render', payload: { n: 1 } };
const CALLS: [fc.Arbitrary<unknown>, Call][] = [
  [fc.oneof(stringOutside(ID_PATTERN, 64), notAString), { field: 'workspaceId', call: (q, v) => q.enqueue({ ...ok, workspaceId: v as string }) }],
  [fc.oneof(stringOutside(ID_PATTERN, 64), notAString), { field: 'jobId', call: (q, v) => q.enqueue({ ...ok, jobId: v as string }) }],
  [fc.oneof(stringOutside(JOB_TYPE_PATTERN, 100), notAString), { field: 'type', call: (q, v) => q.enqueue({ ...ok, type: v as string }) }],
  [fc.oneof(stringOutside(IDEMPOTENCY_KEY_PATTERN, 200), notAString), { field: 'idempotencyKey', call: (q, v) => q.enqueue({ ...ok, idempotencyKey: v as string }) }],
  [hostilePayload, { field: 'payload', call: (q, v) => q.enqueue({ ...ok, payload: v }) }],
  [fc.oneof(stringOutside(ID_PATTERN, 64), notAString), { field: 'workspaceId', call: (q, v) => q.getJob({ workspaceId: v as string, jobId: 'j1' }) }],
  [fc.oneof(stringOutside(ID_PATTERN, 64), notAString), { field: 'jobId', call: (q, v) => q.updateStatus({ workspaceId: 'acme', jobId: v as string, status: 'running' }) }],
  [badStatus, { field: 'status', call: (q, v) => q.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: v as JobStatus }) }],
  [badStatus, { field: 'expectedStatus', call: (q, v) => q.updateStatus({ workspaceId: 'acme', jobId: 'j1', status: 'running', expectedStatus: v as JobStatus }) }],
  [fc.oneof(stringOutside(ID_PATTERN, 64), notAString), { field: 'workspaceId', call: (q, v) => q.listJobs({ workspaceId: v as string }) }],
  [badStatus, { field: 'status', call: (q, v) => q.listJobs({ workspaceId: 'acme', status: v as JobStatus }) }],
  [fc.oneof(fc.string({ maxLength: 30 }).filter((s) => !isCursor(s)), notAString), { field: 'cursor', call: (q, v) => q.listJobs({ workspaceId: 'acme', cursor: v as string }) }],
  [badStage, { field: 'stage', call: (q, v) => q.setStage(v as Stage) }],
  [badStage, { field: 'stage', call: (_, v) => new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: v as Stage, metrics: false }) }],
];

describe('scenario 6: hostile input', () => {
  it('every hostile id, payload, status and stage is a ValidationError naming its field, and Redis is untouched', async () => {
    const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: 'dualwrite', metrics: false, maxPayloadBytes: MAX_PAYLOAD_BYTES });
    await queue.ready();
    await queue.enqueue({ ...ok, payload: { seed: true } }); // something to be left alone
    const before = await redisState(ctx.redis);
    const scriptCallsBefore = await scriptCalls();
    let runs = 0;

    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: CALLS.length - 1 }).chain((i) => fc.tuple(fc.constant(CALLS[i][1]), CALLS[i][0])),
        async ([{ field, call }, bad]) => {
          runs++;
          let outcome: unknown;
          try {
            outcome = await call(queue, bad);
          } catch (error) {
            outcome = error;
          }
          expect(outcome).toBeInstanceOf(ValidationError);
          expect((outcome as ValidationError).field).toBe(field);
          expect(queue.stage).toBe('dualwrite');
        },
      ),
      { numRuns: scaled(300), seed: SOAK.seed },
    );

    expect(await scriptCalls()).toBe(scriptCallsBefore); // nothing reached a script
    expect(await redisState(ctx.redis)).toEqual(before);
    recordRow({
      scenario: 6, name: 'hostile input (fast-check)', operations: runs, faults: runs, faultKind: 'hostile inputs and operation sequences',
      lost: 0, duplicated: 0, halfWritten: 0, callerErrors: 0,
    });
  });

  it('random operation sequences across random stage changes answer as the stage table says and keep the invariants', async () => {
    const workspaces = ['acme', 'Acme', 'ac-me'];
    const jobIds = ['j0', 'j1', 'J1', 'j_1'];
    const statuses = [...JOB_STATUSES];
    const stageChange = fc.record({ op: fc.constant('stage' as const), stage: fc.constantFrom(...STAGES) });
    const enqueue = fc.record({
      op: fc.constant('enqueue' as const),
      workspace: fc.nat(2),
      jobId: fc.option(fc.constantFrom(...jobIds), { nil: undefined }),
      key: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
      payload: fc.nat(1),
    });
    const update = fc.record({
      op: fc.constant('update' as const),
      workspace: fc.nat(2),
      job: fc.nat(20),
      own: fc.boolean(),
      status: fc.constantFrom(...statuses),
      expected: fc.option(fc.constantFrom(...statuses), { nil: undefined, freq: 2 }),
    });
    const get = fc.record({ op: fc.constant('get' as const), workspace: fc.nat(2), job: fc.nat(20), own: fc.boolean() });
    const list = fc.record({ op: fc.constant('list' as const), workspace: fc.nat(2) });
    const operation = fc.oneof(
      { weight: 2, arbitrary: stageChange },
      { weight: 3, arbitrary: enqueue },
      { weight: 3, arbitrary: update },
      { weight: 1, arbitrary: get },
      { weight: 1, arbitrary: list },
    );
    let operations = 0;
    let stageChanges = 0;

    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...STAGES), fc.array(operation, { minLength: 1, maxLength: 40, size: 'max' }), async (start, sequence) => {
        await ctx.redis.flushall();
        const queue = new DualWriteQueue({ heartbeat: false, redis: ctx.redis, stage: start, metrics: false });
        const model = new QueueModel(start);
        const known = [...jobIds]; // jobs the sequence can refer to, generated ids included
        const made: [string, string][] = []; // (workspaceId, jobId) of each job made so far
        // Half the updates and reads aim at a job that exists, the rest at any id in any workspace.
        const target = (step: { workspace: number; job: number; own: boolean }): [string, string] =>
          step.own && made.length > 0
            ? made[step.job % made.length]
            : [workspaces[step.workspace], known[step.job % known.length]];
        for (const step of sequence) {
          operations++;
          if (step.op === 'stage') {
            // The two ends each ignore a layout, so a job only in that layout would be invisible there
            // and its jobId free again (a second job, a second queue entry), and a record that layout
            // holds but did not keep up to date is all they see (a job that left the queue elsewhere
            // shows there as queued, without its entry). A migration reaches complete after backfill
            // and a clean verify (so no new record is older than its legacy twin), and goes back to off
            // only when every job has its legacy record, none older than its new one (MIGRATION.md:
            // after a stay in complete, backfill --resync before stepping back past rampdown): the
            // sequence keeps those preconditions and skips the move otherwise.
            if (step.stage === 'complete' && (model.legacyOnly() > 0 || model.newBehind.size > 0)) continue;
            if (step.stage === 'off' && (model.newOnly() > 0 || model.legacyBehind.size > 0)) continue;
            queue.setStage(step.stage);
            model.stage = step.stage;
            stageChanges++;
            continue;
          }
          if (step.op === 'enqueue') {
            const workspaceId = workspaces[step.workspace];
            const expected = model.enqueue(workspaceId, step.jobId, step.key, step.payload);
            const actual = await settle(queue.enqueue({ workspaceId, type: 't', payload: step.payload, jobId: step.jobId, idempotencyKey: step.key }));
            if ('created' in expected && expected.created && actual.ok) {
              const { jobId, created } = actual.value as { jobId: string; created: boolean };
              expect({ step, created }).toEqual({ step, created: true });
              expected.created(jobId);
              made.push([workspaceId, jobId]);
              if (!known.includes(jobId)) known.push(jobId);
            } else {
              expect({ step, actual }).toEqual({ step, actual: { ok: expected.ok, ...(expected.ok ? { value: expected.value } : { code: expected.code }) } });
            }
          } else if (step.op === 'update') {
            const [workspaceId, jobId] = target(step);
            const expected = model.updateStatus(workspaceId, jobId, step.status, step.expected);
            const actual = await settle(queue.updateStatus({ workspaceId, jobId, status: step.status, expectedStatus: step.expected }));
            expect({ step, actual }).toEqual({ step, actual: expected });
          } else if (step.op === 'get') {
            const [workspaceId, jobId] = target(step);
            const job = await queue.getJob({ workspaceId, jobId });
            expect({ step, job: job && { status: job.status, source: job.source } }).toEqual({ step, job: model.read(workspaceId, jobId) });
          } else {
            const workspaceId = workspaces[step.workspace];
            const { jobs } = await queue.listJobs({ workspaceId });
            expect({ step, jobs: jobs.map((j) => `${j.id}:${j.status}:${j.source}`).sort() }).toEqual({ step, jobs: model.list(workspaceId) });
          }
        }
        await expectRedisMatches(model);
      }),
      {
        numRuns: scaled(40),
        seed: SOAK.seed,
        // Found by the soak (seed 20240601, scale 20): the job left the queue in off, then in live its
        // new record, left behind and still 'queued', let an update to 'queued' strand it.
        examples: [
          [
            'live',
            [
              { op: 'enqueue', workspace: 0, jobId: undefined, key: undefined, payload: 0 },
              { op: 'stage', stage: 'off' },
              { op: 'update', workspace: 0, job: 0, own: true, status: 'running', expected: undefined },
              { op: 'stage', stage: 'live' },
              { op: 'update', workspace: 0, job: 0, own: true, status: 'queued', expected: undefined },
            ],
          ],
        ],
      },
    );

    recordRow({
      scenario: 6, name: 'hostile input (fast-check)', operations, faults: stageChanges, faultKind: 'hostile inputs and operation sequences',
      lost: 0, duplicated: 0, halfWritten: 0, callerErrors: 0,
    });
  });
});

/** A call's answer in the model's terms: its value, or the code of the DualWriteError it raised. */
async function settle(call: Promise<unknown>): Promise<{ ok: true; value: unknown } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    if (error instanceof DualWriteError) return { ok: false, code: error.code };
    throw error;
  }
}

/** Redis holds exactly the model: records and their statuses, the queue in order, the indexes, and the invariants. */
async function expectRedisMatches(model: QueueModel): Promise<void> {
  const report = await checkInvariants(ctx.redis, {
    layouts: 'any',
    layoutsAgree: (job) => model.inSync.get(`${job.workspaceId}/${job.jobId}`) === true,
  });
  expect(report.violations).toEqual([]);
  const legacy = Object.fromEntries(report.jobs.filter((j) => j.legacy).map((j) => [j.jobId, { workspaceId: j.workspaceId, status: j.legacy!.status }]));
  expect(legacy).toEqual(Object.fromEntries(model.legacy));
  const records = Object.fromEntries(report.jobs.filter((j) => j.new).map((j) => [`${j.workspaceId}/${j.jobId}`, { status: j.new!.status }]));
  expect(records).toEqual(Object.fromEntries(model.new));
  expect(await ctx.redis.lrange('queue:default', 0, -1)).toEqual(model.queue);
  for (const [workspaceId, index] of model.index) {
    expect((await ctx.redis.zrange(`ws:${workspaceId}:jobs`, 0, -1)).sort()).toEqual([...index].sort());
  }
}

/** What listJobs accepts as a cursor (queue.ts): a random string that happens to be one is not hostile. */
function isCursor(value: string): boolean {
  return /^-?[0-9][0-9.e+-]*:[A-Za-z0-9_-]{1,64}$/.test(Buffer.from(value, 'base64url').toString('utf8'));
}

async function scriptCalls(): Promise<number> {
  const stats = await ctx.redis.info('commandstats');
  return [...stats.matchAll(/cmdstat_(?:evalsha|eval|evalsha_ro|eval_ro):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}
