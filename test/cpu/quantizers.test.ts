// The load-time quantizers: MXFP4 for dense experts (loadModel's experts: 'mxfp4' for a fine-tuned bf16
// checkpoint) and Q8_0 for dense matrices (denseWeights: 'q8'). Every SIMD set (avx2, avx512, ...) must
// write the scalar reference's bytes exactly, on fresh random data and on edge cases (zeros, -0,
// all-equal blocks, rounding ties, the round-up scale's threshold, subnormals, the largest finite
// values, NaN and Inf), for bf16, f16 and f32 sources, at row counts that leave partial vectors. The
// ties are also checked against the codes the formats give.
import { describe, expect, it } from 'vitest';
import { quantizeMxfp4, quantizeQ8 } from '../../lib/ops.js';
import { Tensor } from '../../lib/tensor.js';
import { availableIsas, randint, randn, rng, withIsa } from './util.js';

type Kind = 'bf16' | 'f16' | 'f32';
const f32bits = new Uint32Array(1), f32view = new Float32Array(f32bits.buffer);
const bitsOf = (x: number): number => ((f32view[0] = x), f32bits[0]);

/** f32 bits -> this kind's bits: bf16 keeps the top half (the values below are bf16-exact), f16 converts exactly. */
function narrow(kind: Kind, b: number): number {
  if (kind === 'f32') return b >>> 0;
  if (kind === 'bf16') return b >>> 16;
  f32bits[0] = b;
  const x = f32view[0], sign = b >>> 31 ? 0x8000 : 0, a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  const e = Math.floor(Math.log2(a));
  if (e < -14) return sign | Math.round(a * 2 ** 24); // subnormal half (callers pass exact ones)
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

/** Edge-case blocks (32 f32 values each, as bits) for one source kind, within its range. */
function edgeBlocks(kind: Kind): number[][] {
  const blocks: number[][] = [];
  const fill = (v: number) => new Array(32).fill(bitsOf(v));
  const [pLo, pHi] = kind === 'f16' ? [-22, 13] : [-133, 125];
  blocks.push(fill(0), fill(-0), Array.from({ length: 32 }, (_, k) => bitsOf(k % 2 ? -0 : 0)));
  // values at the E2M1 rounding ties (and the grid), with amax 6 * 2^p or 4 * 2^p pinning the scale to
  // 2^p, or 7 * 2^p, where the round-up scale 2^(p+1) competes
  const ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 0.5, 1, 1.5, 2, 3, 4, 0.125, 5.5, 0.375];
  for (let p = pLo; p <= pHi; p += kind === 'f16' ? 1 : 3)
    for (const top of [6, 4, 7, 6.5, 4.5]) {
      const vals = [top, ...ties, ...ties.map((t) => -t).slice(0, 15)].map((t) => t * 2 ** p);
      if (Math.abs(vals[0]) > (kind === 'f16' ? 65504 : 3.3e38)) continue;
      if (kind === 'f16' && vals.some((v) => v !== 0 && Math.abs(v) < 2 ** -24)) continue;
      blocks.push(vals.map(bitsOf));
      for (const c of [1, 0.75, 5, 6, 3.5, 7]) blocks.push(fill(c * 2 ** p)); // all equal (7: both scales err by 1, a tie)
    }
  // amax one ulp either side of 6 * 2^p (the round-up threshold)
  for (const p of [-3, 0, 7]) {
    const t = bitsOf(6 * 2 ** p), step = kind === 'f32' ? 1 : kind === 'bf16' ? 1 << 16 : 1 << 13;
    for (const top of [t - step, t, t + step]) blocks.push([top, ...Array.from({ length: 31 }, (_, k) => bitsOf(((k % 7) - 3) * 2 ** p))]);
  }
  // subnormals and the extremes of each kind
  if (kind === 'f16') {
    const half = (h: number) => { // f16 bits -> f32 bits, exactly
      const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
      return bitsOf(s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15)));
    };
    blocks.push(Array.from({ length: 32 }, (_, k) => half(k + 1)), Array.from({ length: 32 }, (_, k) => half(0x8000 | (1023 - k))));
    blocks.push(Array.from({ length: 32 }, (_, k) => half(0x7bff - k)), [half(0x7bff), ...Array.from({ length: 31 }, (_, k) => half(k))]);
  } else {
    const step = kind === 'f32' ? 1 : 1 << 16;
    blocks.push(Array.from({ length: 32 }, (_, k) => (k + 1) * step), Array.from({ length: 32 }, (_, k) => (0x80000000 | (0x7fffff - k * 0x1000)) >>> 0));
    blocks.push(Array.from({ length: 32 }, (_, k) => 0x00800000 + k * step), Array.from({ length: 32 }, (_, k) => 0x7f7fffff - k * step));
    blocks.push([0x7f7fffff, ...Array.from({ length: 31 }, (_, k) => k * step)]);
  }
  // NaN and Inf: alone, among finite values, together
  const nan = 0x7fc00000, negNan = 0xffc00000, inf = 0x7f800000, negInf = 0xff800000;
  const some = (k: number) => bitsOf((k - 16) * 0.01);
  blocks.push(new Array(32).fill(nan), new Array(32).fill(inf), new Array(32).fill(negInf));
  for (const special of [nan, negNan, inf, negInf])
    for (const at of [0, 1, 17, 31]) blocks.push(Array.from({ length: 32 }, (_, k) => (k === at ? special : some(k))));
  blocks.push(Array.from({ length: 32 }, (_, k) => (k === 3 ? nan : k === 9 ? inf : some(k))));
  blocks.push(Array.from({ length: 32 }, (_, k) => (k < 31 ? nan : bitsOf(0.3))));
  return blocks.map((b) => b.map((x) => narrow(kind, x)));
}

/** A source tensor [E, C, R] from blocks of kind bits: block i is (e, g, r) in row-major order. */
function sourceOf(kind: Kind, blocks: number[][], E: number, C: number, R: number): Tensor {
  const n = E * C * R;
  const bits = kind === 'f32' ? new Uint32Array(n) : new Uint16Array(n);
  blocks.forEach((b, i) => {
    const r = i % R, g = Math.floor(i / R) % (C / 32), e = Math.floor(i / (R * (C / 32)));
    for (let k = 0; k < 32; k++) bits[(e * C + g * 32 + k) * R + r] = b[k];
  });
  if (kind === 'f32') return Tensor.fromF32(new Float32Array(bits.buffer), [E, C, R]);
  if (kind === 'bf16') return Tensor.fromBf16(bits as Uint16Array, [E, C, R]);
  return Tensor.fromBlocks('f16', bits as Uint16Array, [E, C, R]);
}

function quantize(src: Tensor): { codes: Uint8Array; scales: Uint8Array } {
  const [E, C, R] = src.shape;
  const q = Tensor.empty('mxfp4', [E, R, C]);
  quantizeMxfp4(src, q);
  return { codes: q.read() as Uint8Array, scales: q.readScales() };
}

function expectSameBytes(src: Tensor, what: string): void {
  const want = withIsa('scalar', () => quantize(src));
  for (const isa of availableIsas().filter((i) => i !== 'scalar')) {
    const got = withIsa(isa, () => quantize(src));
    const bad = got.codes.findIndex((b, i) => b !== want.codes[i]);
    const badScale = got.scales.findIndex((s, i) => s !== want.scales[i]);
    expect(bad, `${what} under ${isa}: code byte ${bad} is ${got.codes[bad]}, the scalar wrote ${want.codes[bad]}`).toBe(-1);
    expect(badScale, `${what} under ${isa}: scale ${badScale} is ${got.scales[badScale]}, the scalar wrote ${want.scales[badScale]}`).toBe(-1);
  }
}

describe('MXFP4 quantizer: every ISA writes the scalar reference\'s bytes', () => {
  it(`runs under ${availableIsas().join(', ')}`, () => {
    expect(availableIsas()).toContain('scalar');
  });

  for (const kind of ['bf16', 'f16', 'f32'] as Kind[]) {
    it(`edge cases, ${kind}`, () => {
      const blocks = edgeBlocks(kind);
      // R not a multiple of 8 or 16: the last vector of each block column is partial
      const E = 2, C = 64, R = Math.ceil(blocks.length / (E * 2)) + 3;
      expectSameBytes(sourceOf(kind, blocks, E, C, R), `${kind} edge cases`);
    });

    it(`random data, ${kind}`, () => {
      const r = rng(`mxfp4-quantize-${kind}`);
      for (const [E, C, R] of [[1, 32, 1], [2, 64, 5], [3, 96, 40], [2, 128, 67], [1, 64, 160]]) {
        const n = E * C * R;
        // about N(0, 0.02) with a few blocks scaled far up or down, and raw random bit patterns
        const normal = randn(r, n, 0.02);
        for (let i = 0; i < n; i++) if (r() < 0.02) normal[i] *= 2 ** randint(r, -40, 40);
        if (kind === 'f16') for (let i = 0; i < n; i++) normal[i] = Math.max(-60000, Math.min(60000, normal[i]));
        const f = Tensor.fromF32(normal, [E, C, R]);
        const src = kind === 'f32' ? f : kind === 'bf16' ? Tensor.fromBf16(normal, [E, C, R])
          : Tensor.fromBlocks('f16', Uint16Array.from(new Uint32Array(normal.buffer), (b) => narrowRound16(b)), [E, C, R]);
        expectSameBytes(src, `${kind} N(0, 0.02) [${E}, ${C}, ${R}]`);
        const raw = kind === 'f32' ? new Uint32Array(n) : new Uint16Array(n);
        for (let i = 0; i < n; i++) raw[i] = Math.floor(r() * 2 ** (kind === 'f32' ? 32 : 16));
        const rawT = kind === 'f32' ? Tensor.fromF32(new Float32Array(raw.buffer), [E, C, R])
          : kind === 'bf16' ? Tensor.fromBf16(raw as Uint16Array, [E, C, R]) : Tensor.fromBlocks('f16', raw as Uint16Array, [E, C, R]);
        expectSameBytes(rawT, `${kind} random bits [${E}, ${C}, ${R}]`);
      }
    });
  }

  it('ties round to the even code, and zeros, NaN and Inf get the codes the scalar documents', () => {
    // amax 6: scale 2^0; the values 0.25 .. 5 sit on the ties between E2M1 neighbours
    const vals = [6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5, 5.5,
      0.1, -0.1, 6, -6, 4, 3, 2, 1.5, 1, 0.5, 0, -0, 0.26, 0.74, 1.26, 3.4];
    const want = [7, 0, 2, 2, 4, 4, 6, 6, 0, 10, 10, 12, 12, 14, 14, 7, 0, 0, 7, 15, 6, 5, 4, 3, 2, 1, 0, 0, 1, 1, 3, 5];
    const nanBlock = [Number.NaN, ...new Array(31).fill(0.5)], infBlock = [Number.POSITIVE_INFINITY, ...new Array(31).fill(0.5)];
    for (const isa of availableIsas()) {
      const got = withIsa(isa, () => quantize(sourceOf('f32', [vals, nanBlock, infBlock, new Array(32).fill(0)].map((b) => b.map(bitsOf)), 1, 32, 4)));
      const code = (blk: number, k: number) => (got.codes[blk * 16 + (k >> 1)] >> (4 * (k & 1))) & 15;
      expect(Array.from({ length: 32 }, (_, k) => code(0, k)), isa).toEqual(want);
      expect(got.scales[0], isa).toBe(127);
      // NaN: passed over by max|v| (amax 0.5: scale 2^-3), then clamps to 6: code 7
      expect([got.scales[1], code(1, 0), code(1, 1)], isa).toEqual([124, 7, 6]); // 0.5 * 2^3 = 4: code 6
      // Inf, and zeros: scale 2^0, all codes 0
      expect([got.scales[2], got.scales[3], ...got.codes.subarray(32, 64)], isa).toEqual([127, 127, ...new Array(32).fill(0)]);
    }
  });
});

/** f32 bits -> f16 bits rounded to nearest even (normals and subnormals; the inputs here are finite and < 65504). */
function narrowRound16(b: number): number {
  f32bits[0] = b;
  const x = f32view[0], sign = b >>> 31 ? 0x8000 : 0, a = Math.abs(x);
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24);
  const e = Math.floor(Math.log2(a));
  const m = roundEven((a / 2 ** e - 1) * 1024);
  return m === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | m;
}
function roundEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** Q8_0 of src [rows, cols] (blocks along the rows) under `isa`. */
function quantizeQ8Under(isa: string, src: Tensor): Uint8Array {
  return withIsa(isa as never, () => {
    const q = Tensor.empty('q8_0', src.shape);
    quantizeQ8(src, q);
    return q.read() as Uint8Array;
  });
}

/** A [blocks, 32] tensor of kind bits from blocks of 32 values. */
function rowsOf(kind: Kind, blocks: number[][]): Tensor {
  const bits = kind === 'f32' ? new Uint32Array(blocks.length * 32) : new Uint16Array(blocks.length * 32);
  blocks.forEach((b, i) => b.forEach((x, k) => (bits[i * 32 + k] = x)));
  const shape = [blocks.length, 32];
  if (kind === 'f32') return Tensor.fromF32(new Float32Array(bits.buffer), shape);
  if (kind === 'bf16') return Tensor.fromBf16(bits as Uint16Array, shape);
  return Tensor.fromBlocks('f16', bits as Uint16Array, shape);
}

describe('Q8_0 quantizer: every ISA writes the scalar reference\'s bytes', () => {
  for (const kind of ['bf16', 'f16', 'f32'] as Kind[]) {
    it(`edge cases and random data, ${kind}`, () => {
      const r = rng(`q8-quantize-${kind}`);
      // the MXFP4 edge blocks (zeros, subnormals, extremes, NaN, Inf, ...), and ties of round(v / d):
      // amax 127 * 2^p makes d = 2^p, so k + 0.5 times 2^p rounds away from zero
      const blocks = edgeBlocks(kind);
      const [pLo, pHi] = kind === 'f16' ? [-16, 8] : [-120, 120];
      for (let p = pLo; p <= pHi; p += kind === 'f16' ? 2 : 7)
        blocks.push([127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 63.5, -63.5, 0.49, 0.51, -0.49, -0.51, 3, -3, 100.5,
          -100.5, 7.5, -7.5, 0, -0, 1, 126, -127, 64.5, -64.5, 12.5, -12.5, 33.5, -33.5].map((t) => narrow(kind, bitsOf(t * 2 ** p))));
      const want = quantizeQ8Under('scalar', rowsOf(kind, blocks));
      for (const isa of availableIsas().filter((i) => i !== 'scalar')) {
        const got = quantizeQ8Under(isa, rowsOf(kind, blocks));
        const bad = got.findIndex((b, i) => b !== want[i]);
        expect(bad, `${kind} edge cases under ${isa}: byte ${bad} (block ${Math.floor(bad / 34)}) is ${got[bad]}, the scalar wrote ${want[bad]}`).toBe(-1);
      }
      for (const [rows, cols] of [[1, 32], [3, 64], [37, 96], [5, 2880]]) {
        const n = rows * cols;
        const raw = kind === 'f32' ? new Uint32Array(n) : new Uint16Array(n);
        for (let i = 0; i < n; i++) raw[i] = Math.floor(r() * 2 ** (kind === 'f32' ? 32 : 16));
        const normal = randn(r, n, 0.02);
        for (const data of [raw, normal]) {
          const src = data instanceof Float32Array
            ? (kind === 'f32' ? Tensor.fromF32(data, [rows, cols]) : kind === 'bf16' ? Tensor.fromBf16(data, [rows, cols])
              : Tensor.fromBlocks('f16', Uint16Array.from(new Uint32Array(data.buffer), (b) => narrowRound16(b)), [rows, cols]))
            : kind === 'f32' ? Tensor.fromF32(new Float32Array(data.buffer), [rows, cols])
              : kind === 'bf16' ? Tensor.fromBf16(data as Uint16Array, [rows, cols]) : Tensor.fromBlocks('f16', data as Uint16Array, [rows, cols]);
          const w = quantizeQ8Under('scalar', src);
          for (const isa of availableIsas().filter((i) => i !== 'scalar')) {
            const got = quantizeQ8Under(isa, src);
            const bad = got.findIndex((b, i) => b !== w[i]);
            expect(bad, `${kind} [${rows}, ${cols}] under ${isa}: byte ${bad} is ${got[bad]}, the scalar wrote ${w[bad]}`).toBe(-1);
          }
        }
      }
    });
  }

  it('rounds ties away from zero and passes a NaN over, under every ISA', () => {
    const vals = [127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, Number.NaN, 0.49, -0.51, ...new Array(20).fill(0)];
    const want = [127, 1, -1, 2, -2, 3, -3, 127, -127, 127, 0, -1, ...new Array(20).fill(0)];
    for (const isa of availableIsas()) {
      const q = quantizeQ8Under(isa, rowsOf('f32', [vals.map(bitsOf)]));
      expect(q[0] | (q[1] << 8), isa).toBe(0x3c00); // d = 127 / 127 = 1.0 in f16
      expect(Array.from(new Int8Array(q.buffer, q.byteOffset + 2, 32)), isa).toEqual(want);
    }
  });
});
