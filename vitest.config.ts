import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // The netplane processes the tests start share one compile cache, as the image's do: each then starts without
    // Node's TypeScript stripper (about 0.4 s less per start, and the suite starts hundreds). Tests of the cache
    // itself set their own.
    env: { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? fileURLToPath(new URL('node_modules/.cache/netplane-tests', import.meta.url)) },
  },
});
