import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { availableIsas, f32, randint, randn, relL2, rng, withIsa } from './util.js';

describe('attention with sinks', () => {
  for (const isa of availableIsas()) {
    it(`matches the reference under ${isa} (prefill and decode, sliding and full)`, () => {
      const r = rng(`attention-${isa}`);
      withIsa(isa, () => {
        for (const window of [0, randint(r, 1, 20)]) {
          const hkv = randint(r, 1, 4);
          const hq = hkv * randint(r, 1, 5);
          const d = randint(r, 1, 80);
          const ctx = randint(r, 20, 90);
          const n = randint(r, 1, 12);
          const start = randint(r, 0, ctx - n);
          const pos = Tensor.fromI32(Int32Array.from({ length: n }, (_, i) => start + i), [n]);
          const kc = Tensor.empty('f32', [ctx, hkv, d]);
          const vc = Tensor.empty('f32', [ctx, hkv, d]);
          // Earlier rows through kvStore (decode-style), then this chunk's rows.
          const past = Tensor.fromI32(Int32Array.from({ length: start }, (_, i) => i), [start]);
          if (start > 0)
            ops.kvStore(Tensor.fromF32(randn(r, start * hkv * d), [start, hkv, d]),
              Tensor.fromF32(randn(r, start * hkv * d), [start, hkv, d]), past, kc, vc);
          ops.kvStore(Tensor.fromF32(randn(r, n * hkv * d), [n, hkv, d]),
            Tensor.fromF32(randn(r, n * hkv * d), [n, hkv, d]), pos, kc, vc);
          const q = Tensor.fromF32(randn(r, n * hq * d), [n, hq, d]);
          const sinks = Tensor.fromBf16(randn(r, hq), [hq]);
          const a = Tensor.empty('f32', [n, hq, d]);
          const b = Tensor.empty('f32', [n, hq, d]);
          ops.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), a);
          reference.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  for (const isa of availableIsas()) {
    it(`decode over a long cache matches the reference under ${isa} (split-K chunks, GQA group > 8)`, () => {
      const r = rng(`attention-long-${isa}`);
      withIsa(isa, () => {
        // ctx > 256 splits one token's keys into chunks; group 10 needs two head tiles of <= 8.
        for (const [hkv, group, d, window] of [[2, 10, 64, 0], [8, 8, 64, 300], [1, 3, 37, 0]]) {
          const hq = hkv * group;
          const ctx = randint(r, 600, 1100);
          const kc = Tensor.fromF32(randn(r, ctx * hkv * d), [ctx, hkv, d]);
          const vc = Tensor.fromF32(randn(r, ctx * hkv * d), [ctx, hkv, d]);
          const pos = Tensor.fromI32([ctx - 1 - randint(r, 0, 20)], [1]);
          const q = Tensor.fromF32(randn(r, hq * d), [1, hq, d]);
          const sinks = Tensor.fromBf16(randn(r, hq), [hq]);
          const a = Tensor.empty('f32', [1, hq, d]);
          const b = Tensor.empty('f32', [1, hq, d]);
          ops.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), a);
          reference.attention(q, kc, vc, sinks, pos, window, 1 / Math.sqrt(d), b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  it('one key and a sink: out = v * e^s / (e^s + e^sink)', () => {
    const kc = Tensor.fromF32([1, 0], [1, 1, 2]);
    const vc = Tensor.fromF32([2, 4], [1, 1, 2]);
    const out = Tensor.empty('f32', [1, 1, 2]);
    ops.attention(Tensor.fromF32([3, 5], [1, 1, 2]), kc, vc, Tensor.fromF32([1], [1]), Tensor.fromI32([0], [1]), 0, 1, out);
    const p = Math.exp(3) / (Math.exp(3) + Math.exp(1));
    expect(f32(out)[0]).toBeCloseTo(2 * p, 5);
    expect(f32(out)[1]).toBeCloseTo(4 * p, 5);
  });

  it('rejects positions outside the cache and mismatched heads', () => {
    const kc = Tensor.empty('f32', [4, 2, 8]);
    const q = Tensor.empty('f32', [1, 4, 8]);
    const out = Tensor.empty('f32', [1, 4, 8]);
    const sinks = Tensor.empty('f32', [4]);
    expect(() => ops.attention(q, kc, kc, sinks, Tensor.fromI32([4], [1]), 0, 1, out)).toThrow(RangeError);
    expect(() => ops.attention(Tensor.empty('f32', [1, 3, 8]), kc, kc, Tensor.empty('f32', [3]),
      Tensor.fromI32([0], [1]), 0, 1, Tensor.empty('f32', [1, 3, 8]))).toThrow(/multiple of kv heads/);
    expect(() => ops.attention(q, kc, kc, sinks, Tensor.fromF32([0], [1]), 0, 1, out)).toThrow(/positions/);
    expect(() => ops.kvStore(Tensor.empty('f32', [1, 2, 8]), Tensor.empty('f32', [1, 2, 8]), Tensor.fromI32([9], [1]), kc, kc))
      .toThrow(RangeError);
  });
});
