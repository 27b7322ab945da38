import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { availableIsas, f32, randint, randn, relL2, rng, withIsa } from './util.js';

describe('rmsnorm / rope / embedding / add', () => {
  for (const isa of availableIsas()) {
    it(`match the references under ${isa}`, () => {
      const r = rng(`norm-rope-${isa}`);
      withIsa(isa, () => {
        const n = randint(r, 1, 9);
        const h = randint(r, 1, 300);
        const x = Tensor.fromF32(randn(r, n * h, 3), [n, h]);
        const w = Tensor.fromBf16(randn(r, h), [h]);
        const a = Tensor.empty('f32', [n, h]);
        const b = Tensor.empty('f32', [n, h]);
        ops.rmsnorm(x, w, 1e-5, a);
        reference.rmsnorm(x, w, 1e-5, b);
        expect(relL2(f32(a), f32(b))).toBeLessThan(1e-6);

        const heads = randint(r, 1, 6);
        const d = 2 * randint(r, 1, 40);
        const q = randn(r, n * heads * d);
        const pos = Int32Array.from({ length: n }, () => randint(r, 0, 100000));
        const invFreq = Float32Array.from({ length: d / 2 }, (_, j) => 150000 ** (-(2 * j) / d));
        const qa = Tensor.fromF32(q, [n, heads, d]);
        const qb = Tensor.fromF32(q, [n, heads, d]);
        ops.rope(qa, Tensor.fromI32(pos, [n]), Tensor.fromF32(invFreq, [d / 2]), 1.3465736);
        reference.rope(qb, Tensor.fromI32(pos, [n]), Tensor.fromF32(invFreq, [d / 2]), 1.3465736);
        expect(relL2(f32(qa), f32(qb))).toBeLessThan(1e-6);

        const v = randint(r, 2, 50);
        const table = Tensor.fromBf16(randn(r, v * h), [v, h]);
        const ids = Int32Array.from({ length: n }, () => randint(r, 0, v));
        const ea = Tensor.empty('f32', [n, h]);
        const eb = Tensor.empty('f32', [n, h]);
        ops.embedding(Tensor.fromI32(ids, [n]), table, ea);
        reference.embedding(Tensor.fromI32(ids, [n]), table, eb);
        expect(ea.read()).toEqual(eb.read());

        ops.add(ea, a);
        reference.add(eb, a);
        expect(ea.read()).toEqual(eb.read());
      });
    });
  }

  it('rmsnorm and rope give hand-computed values', () => {
    const out = Tensor.empty('f32', [1, 2]);
    ops.rmsnorm(Tensor.fromF32([3, 4], [1, 2]), Tensor.fromF32([1, 2], [2]), 0, out);
    const s = 1 / Math.sqrt(12.5);
    expect(f32(out)[0]).toBeCloseTo(3 * s, 6);
    expect(f32(out)[1]).toBeCloseTo(8 * s, 6);
    // position 1, inv_freq pi/2: rotation by 90 degrees: (x1, x2) -> (-x2, x1), times scale 2.
    const x = Tensor.fromF32([1, 2], [1, 1, 2]);
    ops.rope(x, Tensor.fromI32([1], [1]), Tensor.fromF32([Math.PI / 2], [1]), 2);
    expect(f32(x)[0]).toBeCloseTo(-4, 5);
    expect(f32(x)[1]).toBeCloseTo(2, 5);
  });

  it('rejects out-of-range token ids and bad arguments', () => {
    const table = Tensor.fromBf16(new Float32Array(8), [4, 2]);
    const out = Tensor.empty('f32', [1, 2]);
    expect(() => ops.embedding(Tensor.fromI32([4], [1]), table, out)).toThrow(RangeError);
    expect(() => ops.embedding(Tensor.fromI32([-1], [1]), table, out)).toThrow(/out of range/);
    expect(() => ops.embedding(Tensor.fromF32([0], [1]), table, out)).toThrow(/tokens/);
    expect(() => ops.rmsnorm(Tensor.fromF32([1, 2], [1, 2]), Tensor.fromI32([1, 2], [2]), 1e-5, out)).toThrow(TypeError);
    expect(() => ops.rmsnorm(Tensor.fromF32([1, 2], [1, 2]), Tensor.fromF32([1, 2], [2]), NaN, out)).toThrow(/eps/);
    expect(() => ops.add(out, Tensor.empty('f32', [2, 2]))).toThrow(RangeError);
  });
});
