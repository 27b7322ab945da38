// The CI slice of scripts/fuzz.mjs (issue 16): 1,200 seeded cases, damaged checkpoints, damaged GGUF files
// and Harmony token streams a third each, each run in a child process (a signal counts as a failure).
// Longer runs: `node scripts/fuzz.mjs --cases 10000 --seed N`.
import { describe, expect, it } from 'vitest';
import { fuzz } from '../../scripts/fuzz.mjs';

describe('fuzz slice', () => {
  it('1,200 cases: no crash, no hang, only CheckpointError/ConfigError naming the file', async () => {
    const report = await fuzz({ kind: 'all', cases: 1200, seed: Number(process.env.GPTOSS_FUZZ_SEED ?? 1), jobs: 2 });
    console.log(`fuzz slice: ${report.cases} cases in ${report.seconds} s`, JSON.stringify(report.counts));
    expect(report.failures).toEqual([]);
    expect((report.counts['checkpoint:typed'] ?? 0) + (report.counts['checkpoint:ok'] ?? 0)).toBe(400);
    expect((report.counts['gguf:typed'] ?? 0) + (report.counts['gguf:ok'] ?? 0)).toBe(400);
    expect(report.counts['harmony:ok']).toBe(400);
  }, 600_000);
});
