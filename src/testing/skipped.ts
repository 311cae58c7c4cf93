/**
 * Says that tests did not run, and why, as one line a reader of the test output (or a script
 * grepping it) finds: `SKIPPED <what>: <reason>`. For tests that need what a server lacks (a
 * cluster-capable binary, a TLS build): skipping them quietly would pass a run that proved nothing.
 * Written straight to stderr, not through console, so the test runner adds no decoration around it.
 */
export function reportSkipped(what: string, reason: string): void {
  process.stderr.write(`SKIPPED ${oneLine(what)}: ${oneLine(reason)}\n`);
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();
