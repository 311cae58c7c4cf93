import type Redis from 'ioredis';
import { Registry } from 'prom-client';
import { Migration, type MigrationOptions, type Stage } from '../../src';
import { jobFields, type JobRecord } from '../support/state';

export const CREATED = 1_700_000_000_000;

/** Job i of a workspace, as a pre-package service left it: created and updated i ms apart. */
export function record(id: string, workspaceId: string, overrides: Partial<JobRecord> = {}): JobRecord {
  const n = Number(/\d+$/.exec(id)?.[0] ?? 0);
  return {
    id,
    workspaceId,
    type: 'email.send',
    payload: { n, to: `${id}@example.com` },
    status: 'queued',
    createdAt: CREATED + n,
    updatedAt: CREATED + n,
    ...overrides,
  };
}

/** Writes many legacy records in one round trip; returns them. */
export async function putLegacyJobs(redis: Redis, count: number, workspaces: readonly string[]): Promise<JobRecord[]> {
  const jobs = Array.from({ length: count }, (_, i) => record(`j${i}`, workspaces[i % workspaces.length]));
  const pipeline = redis.pipeline();
  for (const job of jobs) pipeline.hset(`job:${job.id}`, jobFields(job));
  await pipeline.exec();
  return jobs;
}

export interface TestMigration {
  migration: Migration;
  registry: Registry;
}

/** A Migration with its own registry, so each test reads only its own metrics. */
export function makeMigration(redis: Redis, stage: Stage, options: Partial<MigrationOptions> = {}): TestMigration {
  const registry = new Registry();
  return { migration: new Migration({ redis, stage, metrics: { registry }, ...options }), registry };
}

/** The index entries a workspace should hold for these jobs, ordered as Redis orders a zset. */
export function indexOf(jobs: readonly JobRecord[]): [string, number][] {
  return jobs
    .map((job): [string, number] => [job.id, job.createdAt])
    .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0));
}
