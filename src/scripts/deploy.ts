import { loadScripts, type ManifestEntry } from './manifest';
import type { RedisClient } from './registry';

/** The manifest as operators see it: every script without its body. */
export function manifestEntries(): ManifestEntry[] {
  return [...loadScripts().values()].map(({ body: _body, ...entry }) => entry);
}

export interface LoadedScriptStatus {
  id: string;
  expectedSha1: string;
  /** What SCRIPT LOAD returned. */
  loadedSha1: string;
  ok: boolean;
}

/**
 * SCRIPT LOAD for every script of the manifest, each checked against the manifest's sha1: run at
 * deploy, before new service instances start, so they find their scripts already cached.
 */
export async function loadAllScripts(redis: RedisClient): Promise<LoadedScriptStatus[]> {
  const statuses: LoadedScriptStatus[] = [];
  for (const script of loadScripts().values()) {
    const loadedSha1 = String(await redis.script('LOAD', script.body));
    statuses.push({ id: script.id, expectedSha1: script.sha1, loadedSha1, ok: loadedSha1 === script.sha1 });
  }
  return statuses;
}

export interface CachedScriptStatus {
  id: string;
  sha1: string;
  /** The server holds the script under the manifest's sha1. */
  loaded: boolean;
}

/** SCRIPT EXISTS for every script of the manifest: a deploy gate or readiness probe. */
export async function checkAllScripts(redis: RedisClient): Promise<CachedScriptStatus[]> {
  const scripts = [...loadScripts().values()];
  const exists = (await redis.script('EXISTS', ...scripts.map((s) => s.sha1))) as number[];
  return scripts.map((s, i) => ({ id: s.id, sha1: s.sha1, loaded: exists[i] === 1 }));
}
