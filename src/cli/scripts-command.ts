import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../cluster/nodes';
import { checkAllScripts, loadAllScripts, manifestEntries } from '../scripts/deploy';
import { connect, createClient } from './connect';
import { duringRun } from './failure';
import { EXIT, line, type CliIo } from './io';
import { targetFor } from './target';
import type { ParsedOptions } from './commands';
import { table } from './render';

/** `scripts load|check|manifest`: the deploy-time view of lua/manifest.json. */
export async function runScripts(action: 'load' | 'check' | 'manifest', options: ParsedOptions, io: CliIo): Promise<number> {
  if (action === 'manifest') {
    const manifest = manifestEntries();
    if (options.json) line(io.stdout, JSON.stringify(manifest, null, 2));
    else line(io.stdout, table([['id', 'sha1', 'keys'], ...manifest.map((s) => [s.id, s.sha1, keysOf(s)])]));
    return EXIT.ok;
  }
  const target = targetFor(options, io.env);
  const redis = createClient(target);
  try {
    await connect(redis, target);
    const code = action === 'load' ? await load(redis, options, io) : await check(redis, options, io);
    return code;
  } catch (error) {
    throw duringRun(error, target);
  } finally {
    redis.disconnect();
  }
}

async function load(redis: Redis | Cluster, options: ParsedOptions, io: CliIo): Promise<number> {
  const scripts = await loadAllScripts(redis);
  const ok = scripts.every((s) => s.ok);
  if (options.json) line(io.stdout, JSON.stringify({ ok, scripts }, null, 2));
  else {
    const rows = scripts.map((s) => [s.id, ...nodeOf(s), s.expectedSha1, s.loadedSha1, s.ok ? 'ok' : 'MISMATCH']);
    line(io.stdout, table([['id', ...nodeHeader(redis), 'manifest sha1', 'loaded sha1', ''], ...rows]));
    const perNode = new Set(scripts.map((s) => s.id)).size;
    line(io.stdout, ok ? `${perNode} scripts loaded${onNodes(redis, scripts)}` : 'some scripts differ from the manifest: a corrupt deploy');
  }
  return ok ? EXIT.ok : EXIT.attention;
}

async function check(redis: Redis | Cluster, options: ParsedOptions, io: CliIo): Promise<number> {
  const scripts = await checkAllScripts(redis);
  const missing = scripts.filter((s) => !s.loaded);
  if (options.json) line(io.stdout, JSON.stringify({ ok: missing.length === 0, scripts }, null, 2));
  else {
    const rows = scripts.map((s) => [s.id, ...nodeOf(s), s.sha1, s.loaded ? 'loaded' : 'MISSING']);
    line(io.stdout, table([['id', ...nodeHeader(redis), 'sha1', ''], ...rows]));
    const perNode = new Set(scripts.map((s) => s.id)).size;
    line(io.stdout, missing.length === 0 ? `all ${perNode} scripts loaded${onNodes(redis, scripts)}` : `${missing.length} missing: run redis-dual-write scripts load`);
  }
  return missing.length === 0 ? EXIT.ok : EXIT.attention;
}

// On a cluster each row is about one node: say which (and its role) in front.
const nodeOf = (s: { node?: string; role?: string }) => (s.node === undefined ? [] : [s.node, s.role ?? '']);
const nodeHeader = (redis: Redis | Cluster) => (isCluster(redis) ? ['node', 'role'] : []);
const onNodes = (redis: Redis | Cluster, rows: { node?: string }[]) =>
  isCluster(redis) ? ` on each of ${new Set(rows.map((row) => row.node)).size} nodes` : '';

function keysOf(script: { keys: number; keysPerJob: number | boolean }): string {
  // The manifest's per-job field changed shape over time (boolean, then a count): show either.
  if (script.keysPerJob === true) return `${script.keys} per job`;
  if (typeof script.keysPerJob === 'number' && script.keysPerJob > 0) {
    return script.keys > 0 ? `${script.keys} + ${script.keysPerJob} per job` : `${script.keysPerJob} per job`;
  }
  return String(script.keys);
}
