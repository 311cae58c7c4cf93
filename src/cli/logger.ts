import type { Logger } from '../logger';
import { line, type CliIo } from './io';

/**
 * The library's warnings (an eviction policy that can lose jobs, a forced transition, a replica that
 * did not acknowledge) on stderr; `beforeLine` ends a progress bar drawn in place first.
 */
export function stderrLogger(io: CliIo, beforeLine: () => void = () => {}): Logger {
  const say = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    beforeLine();
    line(io.stderr, `[${level}] ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`);
  };
  return { debug() {}, info() {}, warn: say('warn'), error: say('error') };
}
