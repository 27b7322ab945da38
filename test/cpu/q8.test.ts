// Q8_0 and ggml-block MXFP4 kernels (the GGUF storage types) against the scalar references, on fresh
// random data under every ISA; the load-time quantizer against the GGUF writer's; ggml MXFP4 blocks
// against the same weights in Hugging Face blocks.
import { describe, expect, it } from 'vitest';
import { mxfp4FromGgml, ops, quantizeQ8, reference } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { quantizeQ8Block, repackMxfp4Block } from '../../scripts/gguf-writer.mjs';
import { LINEAR_TOKEN_COUNTS, PANEL_EDGE_TOKEN_COUNTS, availableIsas, f32, linearVsReference, randint, randn, randomMxfp4, relL2, rng, withIsa } from './util.js';

/** Random Q8_0 [rows, cols]: f16 scales around 2^-7, int8 in [-127, 127]. */
function randomQ8(r: () => number, rows: number, cols: number): Tensor {
  const bytes = new Uint8Array((rows * cols) / 32 * 34);
  for (let g = 0; g < bytes.length / 34; g++) {
    const d = 0x2000 + randint(r, 0, 0x0800) + (r() < 0.5 ? 0x8000 : 0); // f16 in about [2^-7, 2^-6), either sign
    bytes[g * 34] = d & 255;
    bytes[g * 34 + 1] = d >>> 8;
    for (let k = 0; k < 32; k++) bytes[g * 34 + 2 + k] = randint(r, -127, 128) & 255;
  }
  return Tensor.fromBlocks('q8_0', bytes, [rows, cols]);
}

/** The same random MXFP4 weights as Hugging Face blocks + scales and as ggml's 17-byte blocks. */
function mxfp4BothLayouts(r: () => number, shape: number[]): { hf: Tensor; ggml: Tensor } {
  const hf = randomMxfp4(r, shape, 118, 130);
  const codes = hf.read() as Uint8Array, scales = hf.readScales();
  const ggml = new Uint8Array(scales.length * 17);
  for (let g = 0; g < scales.length; g++) repackMxfp4Block(codes, g * 16, scales[g], ggml, g * 17);
  return { hf, ggml: Tensor.fromBlocks('mxfp4-ggml', ggml, shape) };
}

describe('q8_0 linear (GGUF dense weights, denseWeights q8)', () => {
  for (const isa of availableIsas()) {
    it(`matches the reference under ${isa}`, () => {
      const r = rng(`q8-linear-${isa}`);
      withIsa(isa, () => {
        // the odd sizes and the AVX2 prefill panel's edges (util.ts)
        for (const n of [...LINEAR_TOKEN_COUNTS, ...PANEL_EDGE_TOKEN_COUNTS]) {
          const rows = randint(r, 1, 70), cols = n === 17 ? 320 : 32 * randint(r, 1, 12);
          const w = randomQ8(r, rows, cols);
          const bias = Tensor.fromF32(randn(r, rows), [rows]);
          expect(linearVsReference(r, n, w, rows, cols, bias).err).toBeLessThan(1e-5);
        }
      });
    });
  }

  for (const isa of availableIsas()) {
    it(`with q8 activations matches the integer reference under ${isa}`, () => {
      const r = rng(`q8-linear-q8act-${isa}`);
      withIsa(isa, () => {
        for (const n of [1, 2, 3, 4, 5, 7, 9, 16, 17, 24]) {
          const rows = randint(r, 1, 70), cols = 32 * randint(r, 1, 12);
          const w = randomQ8(r, rows, cols);
          const x = Tensor.fromF32(randn(r, n * cols), [n, cols]);
          const bias = Tensor.fromF32(randn(r, rows), [rows]);
          const a = Tensor.empty('f32', [n, rows]), b = Tensor.empty('f32', [n, rows]), exact = Tensor.empty('f32', [n, rows]);
          ops.linear(x, w, bias, a, 'q8');
          reference.linear(x, w, bias, b, 'q8');
          reference.linear(x, w, bias, exact);
          // Integer dots are exact: only the f32 sum of the scaled blocks differs from the reference.
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
          // The q8 path ran (8-bit activations move the result) and stays near the exact product.
          const moved = relL2(f32(a), f32(exact));
          expect(moved).toBeGreaterThan(1e-5);
          expect(moved).toBeLessThan(0.2); // ~1% typical; a 32-column row with cancellation reaches ~6%
        }
        // AVX2 / AVX-VNNI run whole groups of 8 rows from 6 tokens up as an int8 GEMM (q8_avx2.h q8_0_gemm8):
        // its largest vpmaddubsw pairs, weights -128 and 127 against activations rounding to +-127.
        for (const fill of [0x80, 0x7f]) {
          const rows = 19, cols = 96, n = 12;
          const bytes = new Uint8Array((rows * cols) / 32 * 34);
          for (let g = 0; g < bytes.length / 34; g++) {
            bytes[g * 34] = 0x00;
            bytes[g * 34 + 1] = 0x20;
            for (let k = 0; k < 32; k++) bytes[g * 34 + 2 + k] = k % 5 === 0 ? 0xff - fill : fill;
          }
          const w = Tensor.fromBlocks('q8_0', bytes, [rows, cols]);
          const x = Tensor.fromF32(Array.from({ length: n * cols }, (_, i) => ((i >> 5) % 2 ? -1 : 1) * (i % 7 ? 1 : 0.5)), [n, cols]);
          const a = Tensor.empty('f32', [n, rows]), b = Tensor.empty('f32', [n, rows]);
          ops.linear(x, w, null, a, 'q8');
          reference.linear(x, w, null, b, 'q8');
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });
  }

  it('q8 activations leave non-Q8_0 weights exact and are refused off the CPU mode names', () => {
    const r = rng('q8-act-bf16');
    const w = Tensor.fromF32(randn(r, 8 * 64), [8, 64]);
    const x = Tensor.fromF32(randn(r, 2 * 64), [2, 64]);
    const a = Tensor.empty('f32', [2, 8]), b = Tensor.empty('f32', [2, 8]);
    ops.linear(x, w, null, a, 'q8');
    reference.linear(x, w, null, b);
    expect(relL2(f32(a), f32(b))).toBeLessThan(1e-6);
    expect(() => ops.linear(x, w, null, a, 'q4' as never)).toThrow(/ops.linear: activations must be 'f32', 'q8' or 'bf16', got 'q4'/);
    expect(() => ops.linear(x, w, null, a, 'bf16')).toThrow(/ops.linear: activations 'bf16' applies to a CUDA model's grouped expert GEMMs/);
  });

  it('embeds q8_0 rows as d * q', () => {
    const r = rng('q8-embedding');
    const w = randomQ8(r, 20, 64);
    const bytes = w.read() as Uint8Array;
    const tokens = Tensor.fromI32([3, 0, 19], [3]);
    const out = Tensor.empty('f32', [3, 64]);
    ops.embedding(tokens, w, out);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    const got = f32(out);
    [3, 0, 19].forEach((tok, i) => {
      for (let c = 0; c < 64; c++) {
        const g = tok * 2 + (c >> 5);
        const h = dv.getUint16(g * 34, true);
        const d = (h & 0x8000 ? -1 : 1) * 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 1023) / 1024);
        const q = (bytes[g * 34 + 2 + (c & 31)] << 24) >> 24;
        expect(got[i * 64 + c]).toBe(Math.fround(d * q));
      }
    });
  });

  it('quantizes exactly as the GGUF writer does (ggml quantize_row_q8_0 rule)', () => {
    const r = rng('q8-quantize');
    const rows = 7, cols = 96;
    const values = randn(r, rows * cols, 0.05);
    values[5] = 0; // an all-zero block too
    for (let i = 32; i < 64; i++) values[i] = 0;
    const src = Tensor.fromBf16(values, [rows, cols]);
    const out = Tensor.empty('q8_0', [rows, cols]);
    quantizeQ8(src, out);
    const bf = Tensor.fromBf16(values, [rows, cols]).toFloat32();
    const want = new Uint8Array((rows * cols) / 32 * 34);
    for (let g = 0; g < (rows * cols) / 32; g++) quantizeQ8Block(bf.subarray(g * 32, g * 32 + 32), want, g * 34);
    expect(Array.from(out.read() as Uint8Array)).toEqual(Array.from(want));
    // and it stays close to what it quantized: |error| <= d / 2 per value
    const back = Tensor.empty('f32', [rows, cols]);
    ops.embedding(Tensor.fromI32(Array.from({ length: rows }, (_, i) => i), [rows]), out, back);
    expect(relL2(f32(back), bf)).toBeLessThan(0.01);
  });

  it('rejects bad shapes and dtypes, naming them', () => {
    expect(() => Tensor.empty('q8_0', [2, 33])).toThrow(/multiple of 32/);
    expect(() => quantizeQ8(Tensor.empty('i32', [1, 32]), Tensor.empty('q8_0', [1, 32]))).toThrow(/src/);
    expect(() => quantizeQ8(Tensor.empty('f32', [1, 32]), Tensor.empty('q8_0', [1, 64]))).toThrow(/out/);
  });
});

describe('mxfp4 in ggml blocks (GGUF experts)', () => {
  it('holds the same values as the Hugging Face blocks: identical reference results, bit for bit', () => {
    const r = rng('mxfp4-ggml-same');
    const rows = 9, cols = 128;
    const { hf, ggml } = mxfp4BothLayouts(r, [rows, cols]);
    const x = Tensor.fromF32(randn(r, 3 * cols), [3, cols]);
    const a = Tensor.empty('f32', [3, rows]), b = Tensor.empty('f32', [3, rows]);
    reference.linear(x, hf, null, a);
    reference.linear(x, ggml, null, b);
    expect(Array.from(f32(b))).toEqual(Array.from(f32(a)));
  });

  it('converts back to the Hugging Face blocks bit for bit (what a GPU load of a GGUF does)', () => {
    const r = rng('mxfp4-from-ggml');
    const shape = [3, 7, 32 * randint(r, 1, 12)];
    const { hf, ggml } = mxfp4BothLayouts(r, shape);
    const out = Tensor.empty('mxfp4', shape);
    mxfp4FromGgml(ggml, out);
    expect(out.read()).toEqual(hf.read());
    expect(out.readScales()).toEqual(hf.readScales());
    expect(() => mxfp4FromGgml(hf, out)).toThrow(/mxfp4FromGgml: src/);
    expect(() => mxfp4FromGgml(ggml, Tensor.empty('mxfp4', [3, 7, shape[2] + 32]))).toThrow(/mxfp4FromGgml: out/); // never the src shape (cols may be 32)
  });

  for (const isa of availableIsas()) {
    it(`linear matches the reference under ${isa}`, () => {
      const r = rng(`mxfp4-ggml-linear-${isa}`);
      withIsa(isa, () => {
        for (const n of [1, 2, 3, 4, 5, 9, 53]) {
          const rows = randint(r, 1, 70), cols = 32 * randint(r, 1, 12);
          const { ggml } = mxfp4BothLayouts(r, [rows, cols]);
          const x = Tensor.fromF32(randn(r, n * cols), [n, cols]);
          const a = Tensor.empty('f32', [n, rows]), b = Tensor.empty('f32', [n, rows]);
          ops.linear(x, ggml, null, a);
          reference.linear(x, ggml, null, b);
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });

    // The q8 expert kernels through ops.linear(..., 'q8'): under AVX2 / AVX-VNNI from 4 tokens up, whole groups
    // of 8 rows run as an int8 GEMM (mxfp4_avx2.h q8_gemm8: rows in vector lanes, weights biased to unsigned),
    // the rows past the last group of 8 and 1-token products through the row kernel; both block forms.
    it(`with q8 activations matches the integer reference under ${isa} (both block forms, GEMM and row edges)`, () => {
      const r = rng(`mxfp4-q8act-${isa}`);
      withIsa(isa, () => {
        const cases: [number, number][] = [[1, 8], [2, 8], [2, 7], [3, 16], [4, 17], [5, 9], [8, 24], [9, 31], [16, 40], [17, 3], [33, 64]];
        for (const [n, rows] of cases) {
          const cols = 32 * randint(r, 1, 12);
          const { hf, ggml } = mxfp4BothLayouts(r, [rows, cols]);
          const xs = randn(r, n * cols);
          if (n > 2) xs.fill(0, cols, 2 * cols); // a token of zeros: scale 0
          const x = Tensor.fromF32(xs, [n, cols]);
          const bias = Tensor.fromF32(randn(r, rows), [rows]);
          for (const w of [hf, ggml]) {
            const a = Tensor.empty('f32', [n, rows]), b = Tensor.empty('f32', [n, rows]), exact = Tensor.empty('f32', [n, rows]);
            ops.linear(x, w, bias, a, 'q8');
            reference.linear(x, w, bias, b, 'q8');
            reference.linear(x, w, bias, exact);
            // Integer dots are exact: only the f32 sum of the scaled blocks differs from the reference.
            expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
            const moved = relL2(f32(a), f32(exact));
            expect(moved).toBeGreaterThan(1e-6); // the q8 path ran
            expect(moved).toBeLessThan(0.2);
          }
        }
        // The int16 sums at their largest: every weight +6 or -6 (2 x E2M1 = +-12, biased 24 or 0) against
        // activations that all round to +-127, 16 tokens x 16 rows (the GEMM sums 4 vpmaddubsw pairs in int16).
        for (const code of [0x77, 0xff, 0x7f]) {
          const rows = 16, cols = 96, n = 16;
          const blocks = new Uint8Array((rows * cols) / 2).fill(code);
          const scales = new Uint8Array((rows * cols) / 32).fill(127);
          const w = Tensor.fromMxfp4(blocks, scales, [rows, cols]);
          const x = Tensor.fromF32(Array.from({ length: n * cols }, (_, i) => ((i >> 5) % 2 ? -1 : 1) * (1 + (i % 3 === 0 ? 0 : 0.001))), [n, cols]);
          const a = Tensor.empty('f32', [n, rows]), b = Tensor.empty('f32', [n, rows]);
          ops.linear(x, w, null, a, 'q8');
          reference.linear(x, w, null, b, 'q8');
          expect(relL2(f32(a), f32(b))).toBeLessThan(1e-5);
        }
      });
    });

    it(`moe with split gate/up experts equals the interleaved form under ${isa}`, () => {
      const r = rng(`moe-split-${isa}`);
      withIsa(isa, () => {
        const E = 4, H = 64, I = 96, k = 2;
        const gu = mxfp4BothLayouts(r, [E, 2 * I, H]);
        const down = mxfp4BothLayouts(r, [E, H, I]);
        const guBias = randn(r, E * 2 * I, 0.1);
        const guBlocks = gu.hf.read() as Uint8Array, guScales = gu.hf.readScales();
        // gate = rows 0::2, up = rows 1::2 (llama.cpp's split), repacked to ggml blocks.
        const half = (odd: number) => {
          const out = new Uint8Array(E * I * (H / 32) * 17);
          const bias = new Float32Array(E * I);
          for (let e = 0; e < E; e++)
            for (let j = 0; j < I; j++) {
              const src = e * 2 * I + 2 * j + odd, dst = e * I + j;
              for (let g = 0; g < H / 32; g++)
                repackMxfp4Block(guBlocks, (src * (H / 32) + g) * 16, guScales[src * (H / 32) + g], out, (dst * (H / 32) + g) * 17);
              bias[dst] = guBias[src];
            }
          return { w: Tensor.fromBlocks('mxfp4-ggml', out, [E, I, H]), b: Tensor.fromF32(bias, [E, I]) };
        };
        const gate = half(0), up = half(1);
        const downBias = Tensor.fromF32(randn(r, E * H, 0.1), [E, H]);
        for (const n of [1, 3, 17]) {
          const x = Tensor.fromF32(randn(r, n * H), [n, H]);
          const idx = Tensor.fromI32(Array.from({ length: n * k }, (_, i) => (i * 3 + (i >> 1)) % E), [n, k]);
          const wt = Tensor.fromF32(Array.from({ length: n * k }, () => 0.5), [n, k]);
          const hfOut = Tensor.empty('f32', [n, H]), ggOut = Tensor.empty('f32', [n, H]);
          const hfRef = Tensor.empty('f32', [n, H]), ggRef = Tensor.empty('f32', [n, H]);
          const hfW = { gateUp: gu.hf, gateUpBias: Tensor.fromF32(guBias, [E, 2 * I]), down: down.hf, downBias };
          const ggW = { gate: gate.w, gateBias: gate.b, up: up.w, upBias: up.b, down: down.ggml, downBias };
          ops.moe(x, idx, wt, hfW, undefined, hfOut);
          ops.moe(x, idx, wt, ggW, undefined, ggOut);
          reference.moe(x, idx, wt, hfW, undefined, hfRef);
          reference.moe(x, idx, wt, ggW, undefined, ggRef);
          expect(Array.from(f32(ggRef))).toEqual(Array.from(f32(hfRef)));  // same values, same order: bit for bit
          expect(relL2(f32(ggOut), f32(ggRef))).toBeLessThan(1e-5);
          expect(relL2(f32(ggOut), f32(hfOut))).toBeLessThan(1e-5);
          // q8 activations on the ggml blocks: this ISA's kernels against the scalar q8 kernels on the
          // same form, and against the Hugging Face form's q8 (the same int8 blocks: a block's amax does
          // not depend on the order its values are read in). Bound as in moe.test.ts: the SIMD sums run
          // in another order and a value near a rounding boundary of down's quantization can move a level.
          const ggQ8 = { ...ggW, activations: 'q8' as const }, hfQ8 = { ...hfW, activations: 'q8' as const };
          const q8Out = Tensor.empty('f32', [n, H]), q8Scalar = Tensor.empty('f32', [n, H]), q8Hf = Tensor.empty('f32', [n, H]);
          ops.moe(x, idx, wt, ggQ8, undefined, q8Out);
          ops.moe(x, idx, wt, hfQ8, undefined, q8Hf);
          withIsa('scalar', () => ops.moe(x, idx, wt, ggQ8, undefined, q8Scalar));
          expect(relL2(f32(q8Out), f32(q8Scalar))).toBeLessThan(2e-3);
          expect(relL2(f32(q8Out), f32(q8Hf))).toBeLessThan(2e-3);
          // The rounding itself: 2-5% here (64 and 96 columns: 2-3 blocks a dot product, where moe.test.ts's
          // wider rows average more blocks); a wrong order or scale would be O(1).
          const err = relL2(f32(q8Scalar), f32(ggRef));
          expect(err).toBeGreaterThan(0); // it did quantize
          expect(err).toBeLessThan(1e-1);
        }
      });
    });
  }
});
