import { reportSkipped } from '../../src/testing';

/** Whether this machine has what a group of tests needs, and if not, why not. */
export interface Availability {
  supported: boolean;
  reason?: string;
}

/**
 * `describe` when the machine has what the tests need. Otherwise one `SKIPPED` line says which tests
 * and why, and they are skipped; but under DUALWRITE_REQUIRE_ALL=1 (CI sets it, where everything is
 * installed) they fail instead, so a CI run can never pass on proofs that did not run.
 */
export function describeWhen(found: Availability, name: string, remedy: string, tests: () => void): void {
  if (found.supported) return describe(name, tests);
  const reason = `${found.reason ?? 'unavailable'}; ${remedy}`;
  if (process.env.DUALWRITE_REQUIRE_ALL === '1') {
    describe(name, () => {
      it('can run on this machine (DUALWRITE_REQUIRE_ALL=1)', () => {
        throw new Error(`cannot run: ${reason}`);
      });
    });
    return;
  }
  reportSkipped(`"${name}"`, reason);
  describe.skip(name, tests);
}
