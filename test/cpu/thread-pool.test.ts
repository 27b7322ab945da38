// The CPU thread pool's adaptive choice (native/core/thread_pool.cpp): each kind of job runs on all
// threads or inline on the caller, whichever its measured wall time favours. Whichever way a job
// runs, its results must be the kernels' (row-parallel ops give the same bits either way).
import { afterAll, describe, expect, it } from 'vitest';
import { cpuInfo, ops, reference, setPoolAdaptive, setThreads } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { f32, randn, relL2, rng } from './util.js';

const start = cpuInfo();
afterAll(() => {
  setThreads(start.threads);
  setPoolAdaptive(start.adaptive);
});

describe('thread pool', () => {
  it('is not adaptive by default (GPTOSS_POOL_ADAPTIVE unset): fixed fork-join on all threads', () => {
    if (process.env.GPTOSS_POOL_ADAPTIVE !== undefined) return;
    expect(start.adaptive).toBe(false);
  });

  it('tries both ways (windows of 512 jobs), then keeps giving the same results as the reference', () => {
    const r = rng('thread-pool');
    // A pool size no other test here uses: its scores start empty, so the first window runs on all
    // threads and the second inline.
    setThreads(3);
    setPoolAdaptive(true);
    const rows = 64, cols = 256;
    const w = Tensor.fromBf16(randn(r, rows * cols), [rows, cols]);
    const x = Tensor.fromF32(randn(r, cols), [1, cols]);
    const want = Tensor.empty('f32', [1, rows]);
    reference.linear(x, w, null, want);
    const before = cpuInfo().poolJobs;
    const got = Tensor.empty('f32', [1, rows]);
    ops.linear(x, w, null, got);
    const first = Array.from(f32(got));
    expect(relL2(f32(got), f32(want))).toBeLessThan(1e-5);
    for (let i = 0; i < 1100; i++) {
      ops.linear(x, w, null, got);
      if (i % 100 === 0) expect(Array.from(f32(got))).toEqual(first); // same bits whichever way it ran
    }
    expect(Array.from(f32(got))).toEqual(first);
    const after = cpuInfo().poolJobs;
    // Every call went through the choice, and both ways ran (window 1 on all threads, window 2 inline).
    expect(after.parallel + after.inline - before.parallel - before.inline).toBe(1101);
    expect(after.parallel - before.parallel).toBeGreaterThanOrEqual(512);
    expect(after.inline - before.inline).toBeGreaterThanOrEqual(512);
  });

  it('off: every job of more than one chunk runs on all threads, none by the choice', () => {
    setThreads(2);
    expect(setPoolAdaptive(false)).toBe(false);
    const r = rng('thread-pool-off');
    const rows = 128, cols = 512;
    const w = Tensor.fromBf16(randn(r, rows * cols), [rows, cols]);
    const x = Tensor.fromF32(randn(r, 2 * cols), [2, cols]);
    const got = Tensor.empty('f32', [2, rows]), want = Tensor.empty('f32', [2, rows]);
    const before = cpuInfo().poolJobs;
    for (let i = 0; i < 5; i++) ops.linear(x, w, null, got);
    reference.linear(x, w, null, want);
    expect(relL2(f32(got), f32(want))).toBeLessThan(1e-5);
    expect(cpuInfo().poolJobs).toEqual(before);
    expect(cpuInfo().adaptive).toBe(false);
  });

  it('rejects a non-boolean', () => {
    expect(() => setPoolAdaptive('yes' as unknown as boolean)).toThrow(/ops\.setPoolAdaptive: argument 'on' must be a boolean/);
  });
});
