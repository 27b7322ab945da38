import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native tests share the machine's cores; files run in separate forks.
    pool: 'forks',
    // The exact activations path for every test and the child processes they start: the suite's
    // assertions (transformers' logits within 1e-3, batched steps drawing a lone session's ids, incremental
    // decode equal to the full forward) hold for it; CPUs whose kernels are AVX2 without AVX-512 default to
    // q8 activations (lib/model.ts defaultCpuActivations), tested on their own in test/model.test.ts.
    env: { GPTOSS_CPU_ACTIVATIONS: 'f32' },
    // The JSON report is what .ci/run turns into its closing "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
