/** Every test talks to a real Redis that the harness starts; see src/testing. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30000,
  // Each test file starts its own redis-server; two workers match the two cores CI has.
  maxWorkers: 2,
};
