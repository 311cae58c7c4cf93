import type { Cluster, Redis } from 'ioredis';
import { isCluster, serversOf } from '../cluster/nodes';
import { lastReplyMessage, redirectionsSpent } from '../cluster/redirections';
import { assertOneSlot } from '../cluster/single-slot';
import { PermissionError, ScriptMismatchError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics } from '../telemetry';
import { translateRedisError } from './replies';
import { loadScripts, type LoadedScript } from './manifest';

export type RedisClient = Redis | Cluster;

export interface PreloadedScript {
  id: string;
  sha1: string;
}

/**
 * Runs the manifest's scripts with EVALSHA. Redis forgets scripts on restart, failover and SCRIPT
 * FLUSH; NOSCRIPT then means the script did not run, so one retry with EVAL (which sends the body
 * and caches it again) is safe, and a flush landing between a load and the retry cannot reach the
 * caller. Never used inside MULTI or a pipeline, where a NOSCRIPT could not be recovered in order.
 */
export class ScriptRegistry {
  private readonly scripts = loadScripts();
  private readonly cluster: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly metrics: Pick<Metrics, 'scriptReloads'>,
    private readonly logger: Logger,
  ) {
    this.cluster = isCluster(redis);
  }

  /**
   * On a Cluster, the call's keys are checked to share one slot before anything is sent, and the
   * client routes EVALSHA (and the EVAL after a NOSCRIPT) by them: the retry reaches the very node
   * that lacked the script, which caches it there.
   */
  async run(id: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown[]> {
    const script = this.script(id);
    if (this.cluster) assertOneSlot(script.id, keys);
    let afterRedirections: boolean;
    try {
      return (await this.redis.evalsha(script.sha1, keys.length, ...keys, ...args)) as unknown[];
    } catch (error) {
      if (!isNoScript(error)) throw translateRedisError(error);
      afterRedirections = redirectionsSpent(error);
    }
    this.metrics.scriptReloads.inc({ script: script.id });
    this.logger.warn('redis-dual-write: script was missing on the server (NOSCRIPT); resent its body', {
      script: script.id,
      // During a reshard the NOSCRIPT can be the reply that used up the Cluster client's redirections.
      ...(afterRedirections ? { afterRedirections } : {}),
    });
    try {
      return (await this.redis.eval(script.body, keys.length, ...keys, ...args)) as unknown[];
    } catch (error) {
      throw translateRedisError(error);
    }
  }

  /**
   * Loads every script and proves Redis holds each under the manifest's sha1. A user without
   * SCRIPT LOAD is fine when a deploy user preloaded the scripts; otherwise it learns what is missing.
   */
  async preload(): Promise<PreloadedScript[]> {
    const preloaded: PreloadedScript[] = [];
    // Redis does not replicate SCRIPT LOAD: every master needs its own copy. Replicas get one too, so
    // a failover finds it already there; a replica that cannot take it now (say still loading) is
    // no reason to refuse, as the NOSCRIPT retry caches it there once it is promoted.
    const servers = await serversOf(this.redis, { replicas: true });
    for (const script of this.scripts.values()) {
      for (const server of servers) {
        let sha1: string;
        try {
          sha1 = String(await server.redis.script('LOAD', script.body));
        } catch (error) {
          if (server.role === 'replica') continue;
          const refusal = translateRedisError(error);
          if (refusal instanceof PermissionError) return this.checkPreloaded(refusal);
          throw refusal;
        }
        if (sha1 !== script.sha1) throw new ScriptMismatchError(script.id, script.sha1, sha1);
      }
      preloaded.push({ id: script.id, sha1: script.sha1 });
    }
    return preloaded;
  }

  /** Which of the manifest's scripts the server holds (on a Cluster: every master holds), by id. */
  async loaded(): Promise<Map<string, boolean>> {
    const scripts = [...this.scripts.values()];
    const held = new Map(scripts.map((s) => [s.id, true]));
    for (const server of await serversOf(this.redis)) {
      const exists = (await server.redis.script('EXISTS', ...scripts.map((s) => s.sha1))) as number[];
      scripts.forEach((s, i) => {
        if (exists[i] !== 1) held.set(s.id, false);
      });
    }
    return held;
  }

  private async checkPreloaded(refusal: PermissionError): Promise<PreloadedScript[]> {
    let loaded: Map<string, boolean>;
    try {
      loaded = await this.loaded();
    } catch (error) {
      throw translateRedisError(error);
    }
    const missing = [...loaded].filter(([, present]) => !present).map(([id]) => id);
    if (missing.length > 0) {
      throw new PermissionError(
        'SCRIPT LOAD',
        `the Redis user may not run SCRIPT LOAD, and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not ` +
          'loaded: load them as a deploy user (redis-dual-write scripts load) or grant +script|load',
        refusal,
      );
    }
    return [...this.scripts.values()].map((s) => ({ id: s.id, sha1: s.sha1 }));
  }

  private script(id: string): LoadedScript {
    const script = this.scripts.get(id);
    if (!script) throw new Error(`script ${id} is not in lua/manifest.json`);
    return script;
  }
}

/**
 * NOSCRIPT means the script did not run. On a Cluster it may come wrapped: when it is the reply that
 * uses up a call's redirections (a slot moving to a master without the script), ioredis passes it
 * on inside "Too many Cluster redirections. Last error: ReplyError: NOSCRIPT ...".
 */
function isNoScript(error: unknown): boolean {
  return lastReplyMessage(error).startsWith('NOSCRIPT');
}
