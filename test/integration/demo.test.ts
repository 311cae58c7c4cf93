/**
 * `npm run demo` is half of the README's quick start: it must run on a fresh checkout, against the
 * Redis it starts itself, and show what the README says it shows.
 */
import { runDemo } from '../../src/demo';

it('runs the walkthrough from off to live through the stage record, and a worker finishes the queued jobs', async () => {
  const lines: string[] = [];

  await runDemo((text) => lines.push(text));

  const output = lines.join('\n');
  expect(output).toContain('stage init');
  expect(output).toMatch(/stage set: \{"from":"off","to":"dualwrite","epoch":2\}/);
  expect(output).toMatch(/same idempotency key again: \{"jobId":"[^"]+","created":false\}/);
  expect(output).toContain('"repaired":"new"');
  expect(output).toContain('stage set shadow: {"refused":"backfill_needed"}');
  expect(output).toMatch(/verify: \{"clean":true/);
  expect(output).toMatch(/stage set: \{"from":"shadow","to":"live","epoch":4\}/);
  expect(output).toContain('"source":"new"');
  expect(output.match(/claimed [a-z.]+: \{[^}]*"now":"succeeded"\}/g)).toHaveLength(2);
  expect(output).toContain('redis-dual-write stage set rampdown');
  expect(output).toContain('dualwrite_stage{queue="default",stage="live"} 1');
});
