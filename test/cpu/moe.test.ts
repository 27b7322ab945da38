import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { availableIsas, f32, randint, randn, randomMxfp4, relL2, rng, withIsa } from './util.js';

function layer(r: () => number, e: number, h: number, inter: number) {
  return {
    gateUp: randomMxfp4(r, [e, 2 * inter, h], 122, 124),
    gateUpBias: Tensor.fromBf16(randn(r, e * 2 * inter), [e, 2 * inter]),
    down: randomMxfp4(r, [e, h, inter], 120, 122),
    downBias: Tensor.fromBf16(randn(r, e * h), [e, h]),
  };
}

describe('router and moe', () => {
  for (const isa of availableIsas()) {
    it(`match the references under ${isa} (decode and grouped prefill)`, () => {
      const r = rng(`moe-${isa}`);
      withIsa(isa, () => {
        for (const n of [1, 3, randint(r, 5, 20), 61]) {
          const e = randint(r, 2, 9);
          const k = randint(r, 1, Math.min(e, 4) + 1);
          const h = 32 * randint(r, 1, 4);
          const inter = 32 * randint(r, 1, 4);
          const w = layer(r, e, h, inter);
          const x = Tensor.fromF32(randn(r, n * h), [n, h]);
          const rw = Tensor.fromBf16(randn(r, e * h), [e, h]);
          const rb = Tensor.fromBf16(randn(r, e), [e]);
          const idx = Tensor.empty('i32', [n, k]);
          const wt = Tensor.empty('f32', [n, k]);
          const idx2 = Tensor.empty('i32', [n, k]);
          const wt2 = Tensor.empty('f32', [n, k]);
          ops.router(x, rw, rb, k, idx, wt);
          reference.router(x, rw, rb, k, idx2, wt2);
          expect(idx.read()).toEqual(idx2.read());
          expect(relL2(f32(wt), f32(wt2))).toBeLessThan(1e-5);
          const a = Tensor.empty('f32', [n, h]);
          const b = Tensor.empty('f32', [n, h]);
          ops.moe(x, idx, wt, w, { limit: 7, alpha: 1.702 }, a);
          reference.moe(x, idx, wt, w, undefined, b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  // q8: activations rounded to int8 per 32-block. Every SIMD path computes the same integer dot
  // products as the scalar q8 kernel (only the f32 sum over blocks is ordered differently); the
  // rounding itself costs ~1e-2 against the exact reference.
  for (const isa of availableIsas().filter((i) => i !== 'scalar')) {
    it(`q8 activations: ${isa} matches the scalar q8 kernels (decode and grouped prefill, odd block counts)`, () => {
      const r = rng(`moe-q8-${isa}`);
      for (const n of [1, 2, 3, 4, randint(r, 5, 20), 61]) {
        const e = randint(r, 2, 9);
        const k = randint(r, 1, Math.min(e, 4) + 1);
        const h = 32 * randint(r, 1, 6);
        const inter = 32 * randint(r, 1, 6);
        const w = { ...layer(r, e, h, inter), activations: 'q8' as const };
        const xs = randn(r, n * h);
        if (n > 2) xs.fill(0, h, 2 * h); // a token of zeros: scale 0, no division by it
        const x = Tensor.fromF32(xs, [n, h]);
        // distinct experts per token, as the router gives; groups of every size up to 61 tokens
        const ids = Int32Array.from({ length: n * k }, (_, i) => (Math.floor(i / k) + (i % k)) % e);
        const idxT = Tensor.fromI32(ids, [n, k]);
        const wt = Tensor.fromF32(randn(r, n * k), [n, k]);
        const got = Tensor.empty('f32', [n, h]);
        const want = Tensor.empty('f32', [n, h]);
        const exact = Tensor.empty('f32', [n, h]);
        withIsa(isa, () => ops.moe(x, idxT, wt, w, undefined, got));
        withIsa('scalar', () => ops.moe(x, idxT, wt, w, undefined, want));
        reference.moe(x, idxT, wt, w, undefined, exact);
        // Not bit-equal: the SIMD gate_up sums in another order than the scalar one, and an intermediate
        // value that lands near a rounding boundary of the down projection's q8 quantization moves by one
        // level (1/127 of its block's scale). Such flips gave 1e-4..5e-4 on some seeds; a wrong kernel is O(1).
        expect(relL2(f32(got), f32(want))).toBeLessThan(2e-3);
        const err = relL2(f32(want), f32(exact));
        expect(err).toBeGreaterThan(0); // it did quantize
        expect(err).toBeLessThan(3e-2);
      }
    });
  }

  it('q8 activations: rejects an unknown mode, naming it', () => {
    const r = rng('moe-q8-errors');
    const w = layer(r, 2, 32, 32);
    const x = Tensor.fromF32(new Float32Array(32), [1, 32]);
    const out = Tensor.empty('f32', [1, 32]);
    const bad = { ...w, activations: 'q4' as unknown as 'q8' };
    expect(() => ops.moe(x, Tensor.fromI32([0], [1, 1]), Tensor.fromF32([1], [1, 1]), bad, undefined, out))
      .toThrow(/weights\.activations must be 'f32', 'q8' or 'bf16', got 'q4'/);
    // bf16 is a mode of the CUDA grouped expert GEMMs: refused on the CPU and by the reference, not ignored
    const cuda = { ...w, activations: 'bf16' as const };
    expect(() => ops.moe(x, Tensor.fromI32([0], [1, 1]), Tensor.fromF32([1], [1, 1]), cuda, undefined, out))
      .toThrow(/ops\.moe: weights\.activations 'bf16' is a CUDA mode; device cpu multiplies f32 or q8 activations/);
    expect(() => reference.moe(x, Tensor.fromI32([0], [1, 1]), Tensor.fromF32([1], [1, 1]), cuda, undefined, out))
      .toThrow(/weights\.activations 'bf16' is a CUDA mode; the reference multiplies f32 or q8 activations/);
  });

  it('router: top-k ties go to the lower index, weights are a softmax over the k logits', () => {
    const x = Tensor.fromF32([1], [1, 1]);
    const w = Tensor.fromBf16([1, 3, 3, 2], [4, 1]);
    const idx = Tensor.empty('i32', [1, 2]);
    const wt = Tensor.empty('f32', [1, 2]);
    ops.router(x, w, Tensor.fromBf16([0, 0, 0, 0], [4]), 2, idx, wt);
    expect(Array.from(idx.read())).toEqual([1, 2]);
    expect(Array.from(f32(wt))).toEqual([0.5, 0.5]);
  });

  it('rejects bad expert ids and wrong weights', () => {
    const r = rng('moe-errors');
    const w = layer(r, 2, 32, 32);
    const x = Tensor.fromF32(new Float32Array(32), [1, 32]);
    const out = Tensor.empty('f32', [1, 32]);
    const wt = Tensor.fromF32([1], [1, 1]);
    expect(() => ops.moe(x, Tensor.fromI32([2], [1, 1]), wt, w, undefined, out)).toThrow(RangeError);
    expect(() => ops.moe(x, Tensor.fromI32([0], [1, 1]), wt, { ...w, gateUp: w.gateUpBias }, undefined, out))
      .toThrow(/gateUp/);
    expect(() => ops.router(x, Tensor.fromBf16(new Float32Array(64), [2, 32]), Tensor.fromBf16([0, 0], [2]), 3,
      Tensor.empty('i32', [1, 3]), Tensor.empty('f32', [1, 3]))).toThrow(/k must be/);
  });
});
