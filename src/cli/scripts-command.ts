import { isCluster } from '../cluster/nodes';
import { checkAllScripts, loadAllScripts, manifestEntries } from '../scripts/deploy';
import { clientFor, connect } from './connect';
import { EXIT, line, type CliIo } from './io';
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
  const { redis, where } = clientFor(options, io.env);
  // On a cluster each row is about one node: say which (and its role) in front.
  const node = (s: { node?: string; role?: string }) => (s.node === undefined ? [] : [s.node, s.role ?? '']);
  const nodeHeader = isCluster(redis) ? ['node', 'role'] : [];
  const onNodes = (rows: { node?: string }[]) => {
    const nodes = new Set(rows.map((row) => row.node)).size;
    return isCluster(redis) ? ` on each of ${nodes} nodes` : '';
  };
  try {
    await connect(redis, where);
    if (action === 'load') {
      const scripts = await loadAllScripts(redis);
      const ok = scripts.every((s) => s.ok);
      if (options.json) line(io.stdout, JSON.stringify({ ok, scripts }, null, 2));
      else {
        line(io.stdout, table([['id', ...nodeHeader, 'manifest sha1', 'loaded sha1', ''], ...scripts.map((s) => [s.id, ...node(s), s.expectedSha1, s.loadedSha1, s.ok ? 'ok' : 'MISMATCH'])]));
        const perNode = new Set(scripts.map((s) => s.id)).size;
        line(io.stdout, ok ? `${perNode} scripts loaded${onNodes(scripts)}` : 'some scripts differ from the manifest: a corrupt deploy');
      }
      return ok ? EXIT.ok : EXIT.failed;
    }
    const scripts = await checkAllScripts(redis);
    const missing = scripts.filter((s) => !s.loaded);
    if (options.json) line(io.stdout, JSON.stringify({ ok: missing.length === 0, scripts }, null, 2));
    else {
      line(io.stdout, table([['id', ...nodeHeader, 'sha1', ''], ...scripts.map((s) => [s.id, ...node(s), s.sha1, s.loaded ? 'loaded' : 'MISSING'])]));
      const perNode = new Set(scripts.map((s) => s.id)).size;
      line(io.stdout, missing.length === 0 ? `all ${perNode} scripts loaded${onNodes(scripts)}` : `${missing.length} missing: run redis-dual-write scripts load`);
    }
    return missing.length === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    redis.disconnect();
  }
}

function keysOf(script: { keys: number; keysPerJob: number | boolean }): string {
  // The manifest's per-job field changed shape over time (boolean, then a count): show either.
  if (script.keysPerJob === true) return `${script.keys} per job`;
  if (typeof script.keysPerJob === 'number' && script.keysPerJob > 0) {
    return script.keys > 0 ? `${script.keys} + ${script.keysPerJob} per job` : `${script.keysPerJob} per job`;
  }
  return String(script.keys);
}
