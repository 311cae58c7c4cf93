import { ValidationError } from './errors';
import { defaultLayout, describe, type KeyLayout } from './keys';
import { checkObject } from './validation';

/** Every key builder of a layout, in the order the README lists the keys. */
export const KEY_BUILDERS = [
  'legacyJob',
  'newJob',
  'queue',
  'idempotency',
  'workspaceIndex',
  'processing',
  'claims',
  'orphans',
  'unsupported',
  'expiries',
  'checkpoint',
  'stage',
  'stageHistory',
  'instances',
  'instanceInfo',
] as const satisfies readonly (keyof KeyLayout)[];
export type KeyBuilderName = (typeof KEY_BUILDERS)[number];

/** What the `keys` option takes: any builders of KeyLayout; the default layout supplies the rest. */
export type KeyLayoutOption = Partial<KeyLayout>;

/**
 * Valid ids the layout is tried on before it is used: several of each, unlike each other, so a
 * builder that drops, merges or misplaces an id shows itself here rather than in production.
 */
export const SAMPLE_IDS = {
  workspaces: ['acme', 'w-2', 'Z_9'],
  jobs: ['0d1b7f2e-5c4a-4e8b-9f61-2a7c3e9d4b10', 'job_1', 'x'],
  idempotencyKeys: ['order-1:retry.2', 'k'],
  queues: ['default', 'q.2'],
} as const;

/**
 * The layout a queue uses: the default layout with the builders the caller gave in its place, and
 * keyPrefix in front of every key whoever builds it. Builders receive validated ids only. The
 * result is tried on sample ids first: each builder must return a non-empty string, distinct ids must
 * give distinct keys, and no two kinds of key may coincide (a legacy key that is also a new key
 * would make a dual write one write).
 */
export function resolveLayout(keys: unknown, keyPrefix: string, queueName: string): KeyLayout {
  if (keys === undefined) return defaultLayout(keyPrefix);
  const given = checkObject('keys', keys);
  for (const name of Object.keys(given)) {
    if (!(KEY_BUILDERS as readonly string[]).includes(name)) {
      throw new ValidationError(`keys.${name}`, 'unknown-field', `is not a key of the layout (known: ${KEY_BUILDERS.join(', ')})`);
    }
    if (typeof given[name] !== 'function') {
      throw new ValidationError(`keys.${name}`, 'type', `must be a function of ids returning the key, got ${describe(given[name])}`);
    }
  }
  const base = defaultLayout('');
  const builders = {} as Record<KeyBuilderName, (...ids: string[]) => string>;
  for (const name of KEY_BUILDERS) {
    const build = ((given[name] as KeyLayout[typeof name] | undefined) ?? base[name]) as (...ids: string[]) => string;
    builders[name] = (...ids) => `${keyPrefix}${checkKey(name, buildSafely(name, build, ids))}`;
  }
  const layout = builders as unknown as KeyLayout;
  checkDistinct(layout, queueName);
  return layout;
}

/** A builder that throws is a bug in the layout, reported as one, before anything is sent. */
function buildSafely(name: KeyBuilderName, build: (...ids: string[]) => string, ids: string[]): unknown {
  try {
    return build(...ids);
  } catch (error) {
    throw new ValidationError(`keys.${name}`, 'builder', `threw for ids ${JSON.stringify(ids)}: ${(error as Error)?.message ?? String(error)}`);
  }
}

function checkKey(name: KeyBuilderName, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new ValidationError(`keys.${name}`, 'builder', `must return a non-empty string, returned ${describe(key)}`);
  }
  return key;
}

/** Every sample key with the builder and ids that made it. */
export function sampleKeys(layout: KeyLayout, queueName: string): { name: KeyBuilderName; ids: string[]; key: string }[] {
  const { workspaces, jobs, idempotencyKeys } = SAMPLE_IDS;
  const queues = [...new Set([queueName, ...SAMPLE_IDS.queues])];
  const samples: { name: KeyBuilderName; ids: string[]; key: string }[] = [];
  const add = (name: KeyBuilderName, ...ids: string[]) =>
    samples.push({ name, ids, key: (layout[name] as (...ids: string[]) => string)(...ids) });
  for (const jobId of jobs) add('legacyJob', jobId);
  for (const workspaceId of workspaces) {
    for (const jobId of jobs) add('newJob', workspaceId, jobId);
    for (const key of idempotencyKeys) add('idempotency', workspaceId, key);
    add('workspaceIndex', workspaceId);
  }
  for (const name of ['stage', 'stageHistory', 'instances', 'instanceInfo'] as const) add(name);
  for (const queue of queues) {
    add('queue', queue);
    add('processing', queue);
    add('claims', queue);
    add('orphans', queue);
    add('unsupported', queue);
    add('expiries', queue);
    add('checkpoint', queue);
  }
  return samples;
}

function checkDistinct(layout: KeyLayout, queueName: string): void {
  const seen = new Map<string, { name: KeyBuilderName; ids: string[] }>();
  for (const sample of sampleKeys(layout, queueName)) {
    const earlier = seen.get(sample.key);
    if (earlier) {
      const what = (s: { name: string; ids: string[] }) => `${s.name}(${s.ids.map((id) => JSON.stringify(id)).join(', ')})`;
      throw new ValidationError(
        `keys.${sample.name}`,
        'distinct',
        `${what(earlier)} and ${what(sample)} both give the key ${sample.key}: each kind of key and each id needs its own key`,
      );
    }
    seen.set(sample.key, sample);
  }
}
