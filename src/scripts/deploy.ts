import { isCluster, serversOf } from '../cluster/nodes';
import { loadScripts, type ManifestEntry } from './manifest';
import type { RedisClient } from './registry';

/** The manifest as operators see it: every script without its body. */
export function manifestEntries(): ManifestEntry[] {
  return [...loadScripts().values()].map(({ body: _body, ...entry }) => entry);
}

export interface LoadedScriptStatus {
  id: string;
  /** On a Cluster: the node (host:port) this row is about, and its role. Absent for one server. */
  node?: string;
  role?: 'master' | 'replica';
  expectedSha1: string;
  /** What SCRIPT LOAD returned. */
  loadedSha1: string;
  ok: boolean;
}

/**
 * SCRIPT LOAD for every script of the manifest, each checked against the manifest's sha1: run at
 * deploy, before new service instances start, so they find their scripts already cached. On a
 * Cluster, on every master and every replica (Redis does not replicate SCRIPT LOAD; a replica that
 * holds the scripts serves them from its first second as a master).
 */
export async function loadAllScripts(redis: RedisClient): Promise<LoadedScriptStatus[]> {
  const statuses: LoadedScriptStatus[] = [];
  for (const server of await serversOf(redis, { replicas: true })) {
    for (const script of loadScripts().values()) {
      const loadedSha1 = String(await server.redis.script('LOAD', script.body));
      statuses.push({
        id: script.id,
        ...(isCluster(redis) ? { node: server.name, role: server.role } : {}),
        expectedSha1: script.sha1,
        loadedSha1,
        ok: loadedSha1 === script.sha1,
      });
    }
  }
  return statuses;
}

export interface CachedScriptStatus {
  id: string;
  /** On a Cluster: the node (host:port) this row is about, and its role. Absent for one server. */
  node?: string;
  role?: 'master' | 'replica';
  sha1: string;
  /** The server holds the script under the manifest's sha1. */
  loaded: boolean;
}

/** SCRIPT EXISTS for every script of the manifest (on every node of a Cluster): a deploy gate or readiness probe. */
export async function checkAllScripts(redis: RedisClient): Promise<CachedScriptStatus[]> {
  const scripts = [...loadScripts().values()];
  const statuses: CachedScriptStatus[] = [];
  for (const server of await serversOf(redis, { replicas: true })) {
    const exists = (await server.redis.script('EXISTS', ...scripts.map((s) => s.sha1))) as number[];
    statuses.push(
      ...scripts.map((s, i) => ({
        id: s.id,
        ...(isCluster(redis) ? { node: server.name, role: server.role } : {}),
        sha1: s.sha1,
        loaded: exists[i] === 1,
      })),
    );
  }
  return statuses;
}
