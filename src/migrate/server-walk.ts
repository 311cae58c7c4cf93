import type { Redis } from 'ioredis';
import { scanFraction } from './scan';

/** A server a walk SCANs, under an id that names it for the walk's checkpoint. */
export interface WalkedServer {
  /** The server's run_id for a resumable walk (a cursor is only valid on that process), else its name. */
  id: string;
  redis: Redis;
}

/** Where an interrupted walk stood: the server the cursor belongs to, and the servers already walked. */
export interface WalkPosition {
  serverId: string;
  cursor: string;
  done: readonly string[];
}

/**
 * A SCAN walk over several servers in turn: one on a standalone Redis, every master on a Cluster
 * (each holds only its own slots' keys). Tracks which server the cursor belongs to and which are
 * done, so a walk can stop after any page and continue from there.
 */
export class ServerWalk {
  private at = 0;
  private current = '0';
  private readonly finished = new Set<string>();

  constructor(
    private readonly servers: readonly WalkedServer[],
    resume?: WalkPosition,
  ) {
    for (const id of resume?.done ?? []) if (servers.some((server) => server.id === id)) this.finished.add(id);
    this.skipFinished();
    if (resume && !this.over && this.server.id === resume.serverId) this.current = resume.cursor;
  }

  /** The server the next page comes from. */
  get server(): WalkedServer {
    return this.servers[this.at];
  }

  get cursor(): string {
    return this.current;
  }

  /** Every server walked to the end. */
  get over(): boolean {
    return this.at >= this.servers.length;
  }

  /** Takes the cursor the last page returned; '0' ends this server's walk and moves to the next. */
  advance(next: string): void {
    this.current = next;
    if (next !== '0') return;
    this.finished.add(this.server.id);
    this.skipFinished();
  }

  /** Where the walk stands, for a checkpoint. */
  position(): WalkPosition {
    return { serverId: this.over ? '' : this.server.id, cursor: this.current, done: [...this.finished] };
  }

  /** Estimated share walked, 0 to 1, over all servers. */
  fraction(): number {
    if (this.over) return 1;
    return (this.finished.size + (this.current === '0' ? 0 : scanFraction(this.current))) / this.servers.length;
  }

  private skipFinished(): void {
    while (!this.over && this.finished.has(this.server.id)) this.at++;
    this.current = '0';
  }
}
