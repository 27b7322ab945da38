import { describe, expect, it } from 'vitest';
import { ops, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { repackMxfp4Block } from '../../scripts/gguf-writer.mjs';
import { LINEAR_TOKEN_COUNTS, PANEL_EDGE_TOKEN_COUNTS, availableIsas, f32, linearVsReference, randint, randn, randomMxfp4, relL2, rng, withIsa } from './util.js';

/** The same MXFP4 weights in ggml's 17-byte blocks (the GGUF experts' form). */
function mxfp4ToGgml(hf: Tensor): Tensor {
  const codes = hf.read() as Uint8Array, scales = hf.readScales();
  const ggml = new Uint8Array(scales.length * 17);
  for (let g = 0; g < scales.length; g++) repackMxfp4Block(codes, g * 16, scales[g], ggml, g * 17);
  return Tensor.fromBlocks('mxfp4-ggml', ggml, hf.shape);
}

describe('mxfp4 dequantize', () => {
  it('decodes known bytes: low nibble first, E2M1 table, 2^(s-127)', () => {
    // byte 0x21: low nibble 1 (0.5), high nibble 2 (1.0); 0xF7: low 7 (6.0), high 15 (-6.0);
    // 0x9C: low 12 (-2.0), high 9 (-0.5). Scale 128 -> x2.
    const blocks = new Uint8Array(16);
    blocks[0] = 0x21;
    blocks[1] = 0xf7;
    blocks[2] = 0x9c;
    const packed = Tensor.fromMxfp4(blocks, new Uint8Array([128]), [1, 32]);
    for (const fn of [ops, reference]) {
      const out = Tensor.empty('f32', [1, 32]);
      fn.mxfp4Dequantize(packed, out);
      const v = f32(out);
      expect(Array.from(v.slice(0, 6))).toEqual([1, 2, 12, -12, -4, -1]);
      expect(Array.from(v.slice(6))).toEqual(new Array(26).fill(0));
    }
    const scaled = Tensor.fromMxfp4(new Uint8Array(16).fill(0x77), new Uint8Array([120]), [32]);
    const out = Tensor.empty('f32', [32]);
    ops.mxfp4Dequantize(scaled, out);
    expect(f32(out)[0]).toBe(6 * 2 ** -7);
  });

  it('matches the reference exactly on random data (f32 and bf16 out)', () => {
    const r = rng('mxfp4-dequant');
    const shape = [randint(r, 1, 4), randint(r, 1, 37), 32 * randint(r, 1, 9)];
    const packed = randomMxfp4(r, shape, 100, 150);
    for (const dtype of ['f32', 'bf16'] as const) {
      const a = Tensor.empty(dtype, shape);
      const b = Tensor.empty(dtype, shape);
      ops.mxfp4Dequantize(packed, a);
      reference.mxfp4Dequantize(packed, b);
      expect(a.read()).toEqual(b.read());
    }
  });

  it('rejects wrong dtypes and shapes, naming the argument', () => {
    const f = Tensor.empty('f32', [2, 32]);
    expect(() => ops.mxfp4Dequantize(f, f)).toThrow(TypeError);
    expect(() => ops.mxfp4Dequantize(f, f)).toThrow(/packed/);
    const p = randomMxfp4(rng('x'), [2, 32]);
    expect(() => ops.mxfp4Dequantize(p, Tensor.empty('f32', [2, 33]))).toThrow(RangeError);
    expect(() => ops.mxfp4Dequantize(p, Tensor.empty('i32', [2, 32]))).toThrow(/out/);
  });
});

describe('mxfp4 linear (packed matvec / matmul)', () => {
  for (const isa of availableIsas()) {
    it(`matches the reference under ${isa}`, () => {
      const r = rng(`mxfp4-linear-${isa}`);
      withIsa(isa, () => {
        for (const n of LINEAR_TOKEN_COUNTS) {
          const rows = randint(r, 1, 70);
          const cols = 32 * randint(r, 1, 12);
          const w = randomMxfp4(r, [rows, cols]);
          const bias = Tensor.fromBf16(randn(r, rows), [rows]);
          expect(linearVsReference(r, n, w, rows, cols, bias).err).toBeLessThan(1e-5);
        }
      });
    });
  }

  // Token counts around the AVX2 prefill panel's edges (columns in the lanes from n = 2: token pairs and
  // an odd token; 6-row panels with row tails; 128-column chunks and a shorter last one, cols up to 384;
  // GPTOSS_CPU_PANEL=tokens, the token-lane panel, is an A/B aid only), on fresh random data, both block forms.
  for (const isa of availableIsas()) {
    it(`matches the reference at prefill token counts under ${isa} (both block forms)`, () => {
      const r = rng(`mxfp4-prefill-${isa}`);
      withIsa(isa, () => {
        for (const n of PANEL_EDGE_TOKEN_COUNTS) {
          const rows = randint(r, 1, 20);
          const cols = n % 2 ? 320 : 32 * randint(r, 1, 12);
          const w = randomMxfp4(r, [rows, cols]);
          const { err, x, want } = linearVsReference(r, n, w, rows, cols);
          expect(err).toBeLessThan(1e-5);
          const ggml = mxfp4ToGgml(w);
          const got2 = Tensor.empty('f32', [n, rows]);
          ops.linear(x, ggml, null, got2);
          expect(relL2(f32(got2), f32(want))).toBeLessThan(1e-5);
        }
      });
    });
  }

  it('handles scales outside the exponent-add range (s < 2, s > 252) like the reference (n = 1 and n > 1)', () => {
    const r = rng('mxfp4-extreme');
    for (const isa of availableIsas())
      withIsa(isa, () => {
        // n = 1 is the matvec, n = 5 the prefill tile (its own per-scale tables). (Scales above 252
        // overflow f32 for the larger E2M1 codes in the reference too, so only s < 2 is compared.)
        for (const n of [1, 5]) {
          const w = randomMxfp4(r, [8, 64], 0, 3);
          const x = Tensor.fromF32(randn(r, n * 64, 1e30), [n, 64]);
          const got = Tensor.empty('f32', [n, 8]);
          const want = Tensor.empty('f32', [n, 8]);
          ops.linear(x, w, null, got);
          reference.linear(x, w, null, want);
          expect(relL2(f32(got), f32(want))).toBeLessThan(1e-5);
        }
      });
  });
});
