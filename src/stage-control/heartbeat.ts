import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyLayout } from '../keys';
import type { Logger } from '../logger';
import { MANIFEST_PATH, sha1 } from '../scripts/manifest';
import type { ScriptRegistry } from '../scripts/registry';
import { translateRedisError } from '../scripts/replies';
import { PermissionError } from '../errors';
import type { StageSource } from './source';

/** What an instance says in its heartbeat; `status` shows it. */
export interface InstanceInfo {
  queue: string;
  /** The package version the instance runs. */
  version: string;
  /** sha1 of its lua/manifest.json: instances on other scripts show up in status. */
  scripts: string;
  mode: 'static' | 'managed';
  /** The stage and epoch it last ran under ('' before its first call). */
  stage: string;
  epoch: string;
  host: string;
  pid: number;
}

export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
export const SCRIPTS_SHA1: string = sha1(readFileSync(MANIFEST_PATH, 'utf8'));

/** An instance that has not beaten for this long is gone: status leaves it out, beats prune it. */
export const INSTANCE_MAX_AGE_MS = 60_000;

/** A default instance id: unique per process, readable in status. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
}

/**
 * At most one heartbeat per interval, sent after an operation and never awaited by it: a beat that
 * fails costs the service nothing. A user the ACL does not allow to beat is warned about once and
 * shows as unseen in status; the queue works on.
 */
export class Heartbeat {
  private lastBeat = 0;
  private refused = false;

  constructor(
    private readonly scripts: ScriptRegistry,
    private readonly keys: KeyLayout,
    private readonly instanceId: string,
    private readonly queueName: string,
    private readonly stages: StageSource,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Called after every operation: beats when the interval has passed since the last beat. */
  maybeBeat(): void {
    const now = Date.now();
    if (this.refused || now - this.lastBeat < this.intervalMs) return;
    this.lastBeat = now;
    void this.beat().catch((error: unknown) => {
      this.logger.debug('redis-dual-write: heartbeat failed; the next operation tries again', { error: String(error) });
    });
  }

  async beat(): Promise<void> {
    const info: InstanceInfo = {
      queue: this.queueName,
      version: PACKAGE_VERSION,
      scripts: SCRIPTS_SHA1,
      mode: this.stages.mode,
      stage: this.stages.stage ?? '',
      epoch: this.stages.epoch,
      host: hostname(),
      pid: process.pid,
    };
    let reply: unknown[];
    try {
      reply = await this.scripts.run('heartbeat.v1', [this.keys.instances(), this.keys.instanceInfo()], [
        this.instanceId, JSON.stringify(info), INSTANCE_MAX_AGE_MS, 10,
      ]);
    } catch (error) {
      if (translateRedisError(error) instanceof PermissionError) return this.refuse(String(error));
      throw error;
    }
    if (reply[0] === 'NO_PERMISSION') this.refuse(`${String(reply[1])} on ${String(reply[2])}`);
  }

  private refuse(what: string): void {
    this.refused = true;
    this.logger.warn('redis-dual-write: this Redis user may not write heartbeats; the queue works on, but status shows this instance as unseen', { refused: what });
  }
}
