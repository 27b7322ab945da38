import { describe, expect, it } from 'vitest';
import { ops } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { LINEAR_TOKEN_COUNTS, PANEL_EDGE_TOKEN_COUNTS, availableIsas, f32, linearVsReference, randint, randn, rng, withIsa } from './util.js';

describe('bf16 linear', () => {
  for (const isa of availableIsas()) {
    it(`matches the reference under ${isa} (odd sizes, n = 1..5, 9, 53)`, () => {
      const r = rng(`bf16-linear-${isa}`);
      withIsa(isa, () => {
        for (const n of LINEAR_TOKEN_COUNTS) {
          const rows = randint(r, 1, 90);
          const cols = randint(r, 1, 300);
          const w = Tensor.fromBf16(randn(r, rows * cols), [rows, cols]);
          const bias = n % 2 ? Tensor.fromF32(randn(r, rows), [rows]) : null;
          expect(linearVsReference(r, n, w, rows, cols, bias).err).toBeLessThan(1e-5);
        }
      });
    });
  }

  // Token counts around the AVX2 prefill panel's edges (the panel needs cols % 8 == 0: token groups of
  // 8/16/24 lanes, 6-row panels with row tails, column chunks); cols % 8 != 0 (n = 25) keeps the row kernels.
  for (const isa of availableIsas()) {
    it(`matches the reference at prefill token counts under ${isa}`, () => {
      const r = rng(`bf16-linear-prefill-${isa}`);
      withIsa(isa, () => {
        for (const n of PANEL_EDGE_TOKEN_COUNTS) {
          const rows = randint(r, 1, 20);
          const cols = n === 25 ? 8 * randint(r, 1, 40) + 3 : n % 2 ? 264 : 8 * randint(r, 1, 40);
          const w = Tensor.fromBf16(randn(r, rows * cols), [rows, cols]);
          expect(linearVsReference(r, n, w, rows, cols).err).toBeLessThan(1e-5);
        }
      });
    });
  }

  it('computes a hand-checked value', () => {
    const w = Tensor.fromBf16([1, 2, 3, -1, 0.5, 0.25], [2, 3]);
    const x = Tensor.fromF32([1, 1, 2], [1, 3]);
    const out = Tensor.empty('f32', [1, 2]);
    ops.linear(x, w, Tensor.fromBf16([10, 20], [2]), out);
    expect(Array.from(f32(out))).toEqual([19, 20]);
  });

  it('rejects bad arguments with errors naming them', () => {
    const x = Tensor.fromF32(new Float32Array(6), [2, 3]);
    const w = Tensor.fromBf16(new Float32Array(12), [4, 3]);
    const out = Tensor.empty('f32', [2, 4]);
    expect(() => ops.linear(Tensor.fromI32([1, 2, 3], [1, 3]), w, null, out)).toThrow(TypeError);
    expect(() => ops.linear(Tensor.fromI32([1, 2, 3], [1, 3]), w, null, out)).toThrow(/linear: x/);
    expect(() => ops.linear(x, Tensor.fromI32(new Int32Array(12), [4, 3]), null, out)).toThrow(/weight/);
    expect(() => ops.linear(x, w, null, Tensor.empty('f32', [2, 5]))).toThrow(RangeError);
    expect(() => ops.linear(x, w, Tensor.fromBf16([1], [1]), out)).toThrow(/bias/);
    expect(() => ops.linear(x, {} as Tensor, null, out)).toThrow(TypeError);
  });
});
