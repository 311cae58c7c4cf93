/** A private Redis for tests: they flush it, restart it and reconfigure it. */
export interface RedisHandle {
  /** redis://host:port; read it again after restart(), a container may come back on another port. */
  readonly url: string;
  /** How this Redis was obtained. */
  readonly via: 'url' | 'container' | 'binary';
  /** Stops the server and removes its data. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same data (append-only file, fsync always). */
  restart(): Promise<void>;
  /**
   * Kills the server with SIGKILL (no shutdown, no last write) and starts it again on the same
   * data: what survives is what the append-only file held when the server died.
   */
  crash(): Promise<void>;
}
