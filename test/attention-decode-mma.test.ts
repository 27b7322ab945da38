// Host emulation of the tensor-core decode attention kernel's index math (native/cuda/attention.cu,
// attention_decode_mma_kernel; GPTOSS_CUDA_ATTN_DECODE=mma), so the parts a GPU run would otherwise be
// the first to exercise are checked in CI:
//  - the split partition (whole 64-key tiles a split from the first visible key, the last splits empty);
//  - one warp's tile through the documented fragment layouts of mma.m16n8k16 and ldmatrix.x4.trans: the
//    writers' XOR swizzles, the permuted K dims (q permuted alike), q hi / lo in the MMA's two row halves,
//    P from the score accumulators, V transposed: S and O must equal the plain dot products;
//  - shared-memory banks: the K reads (16 bytes a lane: 8 lanes a phase) and V's ldmatrix rows (8 a
//    phase) hit 32 distinct banks;
//  - precision: q.k through bf16 hi + lo of q and of an f32 K (the kernel's 2 MMAs a k-step, products
//    exact, f32 sums) against the exact dot, beside plain f32 FMA's error (the CPU reference's).
import { describe, expect, it } from 'vitest';

const TILE = 64, D = 64;

// ---- the split partition (kernel: per, begin, end) ----
function splitRanges(pos: number, window: number, splits: number): Array<[number, number]> {
  const lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
  const len = pos - lo + 1;
  const per = Math.ceil(len / (splits * TILE)) * TILE;
  const out: Array<[number, number]> = [];
  for (let s = 0; s < splits; s++) {
    const begin = lo + s * per, end = Math.min(pos + 1, begin + per);
    out.push([begin, end]);
  }
  return out;
}
// policy.cpp attention_decode_mma_splits
function mmaSplits(ctx: number, window: number): number {
  const span = window > 0 ? Math.min(ctx, window) : ctx;
  const tiles = Math.ceil(Math.max(span, 1) / TILE);
  if (window > 0 && tiles <= 4) return 1;
  return Math.min(tiles, 64);
}

// ---- bf16 / f16 rounding (round to nearest even), as the kernel's pack_bf16x2 / __floats2half2_rn ----
const f32buf = new Float32Array(1), u32buf = new Uint32Array(f32buf.buffer);
function bf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  u32buf[0] = ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32buf[0];
}
function f16(x: number): number {  // normal and subnormal range (|x| < 65504)
  if (x === 0) return 0;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const q = 2 ** (e - 10);
  let r = Math.round(x / q);
  if (Math.abs(x / q - Math.trunc(x / q)) === 0.5) r = 2 * Math.round(x / q / 2);  // ties to even
  return r * q;
}
const fr = Math.fround;

// A deterministic generator (no seed dependence between runs).
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// ---- mma.m16n8k16 (PTX ISA fragment layout): a[lane][4 regs][2], b[lane][2][2], c[lane][4] ----
type Frag = number[][][];
function mma(a: Frag, b: Frag, c: number[][]): void {
  const A = Array.from({ length: 16 }, () => new Array<number>(16).fill(NaN));
  const B = Array.from({ length: 16 }, () => new Array<number>(8).fill(NaN));
  for (let lane = 0; lane < 32; lane++) {
    const g = lane >> 2, t = lane & 3;
    const rows = [g, g + 8, g, g + 8], ks = [2 * t, 2 * t, 2 * t + 8, 2 * t + 8];
    for (let r = 0; r < 4; r++) for (let e = 0; e < 2; e++) A[rows[r]][ks[r] + e] = a[lane][r][e];
    for (let r = 0; r < 2; r++) for (let e = 0; e < 2; e++) B[2 * t + 8 * r + e][g] = b[lane][r][e];
  }
  for (let lane = 0; lane < 32; lane++) {
    const g = lane >> 2, t = lane & 3;
    for (let r = 0; r < 4; r++) {
      const row = r < 2 ? g : g + 8, col = 2 * t + (r & 1);
      let s = 0;
      for (let k = 0; k < 16; k++) s += A[row][k] * B[k][col];
      c[lane][r] += s;
    }
  }
}

// ---- shared memory as 4-byte words holding values (f32) or pairs of 16-bit values ----
class Smem {
  vals = new Map<number, number>();  // element address in bytes -> value
  put(byte: number, v: number) { this.vals.set(byte, v); }
  get(byte: number): number {
    const v = this.vals.get(byte);
    if (v === undefined) throw new Error(`read of unwritten shared byte ${byte}`);
    return v;
  }
}

// One warp (w) of one tile: K rows kRows[key][d], V rows vRows[key][d] (key 0..63 of the tile), q[g][d]
// for g < G. Returns S[g][16 keys of the warp] and O[g][d] = sum over the warp's keys of P V.
function emulateWarp(w: number, kHalf: boolean, q: number[][], G: number, kRows: number[][], vRows: number[][], split: (x: number) => [number, number]) {
  const kRowBytes = kHalf ? 128 : 256, kChunks = kRowBytes / 16, kElem = kHalf ? 2 : 4;
  const sm = new Smem();
  const vBase = TILE * kRowBytes;
  // writers (load_tile): chunk ch of row -> (ch ^ ((row & 1) << 2)) for K, (ch ^ (row & 7)) for V
  for (let row = 0; row < TILE; row++) {
    for (let ch = 0; ch < kChunks; ch++) {
      const phys = row * kRowBytes + (ch ^ ((row & 1) << 2)) * 16;
      for (let e = 0; e < 16 / kElem; e++) sm.put(phys + e * kElem, kRows[row][ch * (16 / kElem) + e]);
    }
    for (let ch = 0; ch < 8; ch++) {
      const phys = vBase + row * 128 + (ch ^ (row & 7)) * 16;
      for (let e = 0; e < 8; e++) sm.put(phys + 2 * e, vRows[row][ch * 8 + e]);
    }
  }
  const kdim = (tq: number, ks: number, e: number) => (kHalf ? 32 * (ks >> 1) + 8 * tq + 4 * (ks & 1) + e : 16 * ks + 4 * tq + e);
  // q fragments: a0/a2 = hi of head g, a1/a3 = lo (rows g + 8)
  const qa: Frag[] = [0, 1, 2, 3].map((ks) =>
    Array.from({ length: 32 }, (_, lane) => {
      const g = lane >> 2, t = lane & 3;
      const regs: number[][] = [];
      for (let half = 0; half < 2; half++) {
        const x = g < G ? q[g][kdim(t, ks, 2 * half)] : 0, y = g < G ? q[g][kdim(t, ks, 2 * half + 1)] : 0;
        const [xh, xl] = split(x), [yh, yl] = split(y);
        regs.push([xh, yh], [xl, yl]);
      }
      return regs;  // [a0, a1, a2, a3]
    }),
  );
  const banksK: number[][] = [];
  const sacc = [0, 1].map(() => Array.from({ length: 32 }, () => [0, 0, 0, 0]));
  for (let nt = 0; nt < 2; nt++) {
    for (let ks = 0; ks < 4; ks++) {
      const b: Frag = [];
      const addrs: number[] = [];
      for (let lane = 0; lane < 32; lane++) {
        const g = lane >> 2, t = lane & 3, row = 16 * w + 8 * nt + g, sw = (row & 1) << 2;
        let vals: number[];
        if (kHalf) {  // one 16-byte read covers k-steps 2kp and 2kp + 1
          const chunk = (4 * (ks >> 1) + t) ^ sw, base = row * kRowBytes + chunk * 16 + (ks & 1) * 8;
          vals = [0, 1, 2, 3].map((e) => sm.get(base + 2 * e));
          addrs.push(row * kRowBytes + chunk * 16);
        } else {
          const chunk = (4 * ks + t) ^ sw, base = row * kRowBytes + chunk * 16;
          vals = [0, 1, 2, 3].map((e) => sm.get(base + 4 * e));
          addrs.push(base);
        }
        b.push([[vals[0], vals[1]], [vals[2], vals[3]]]);
      }
      banksK.push(addrs);
      // the kernel: hi and lo of K in two MMAs (exact K: lo = 0)
      const bh = b.map((r) => r.map((p) => p.map((v) => split(v)[0])));
      const bl = b.map((r) => r.map((p) => p.map((v) => split(v)[1])));
      mma(qa[ks], bh, sacc[nt]);
      mma(qa[ks], bl, sacc[nt]);
    }
  }
  // S[g][key]: rows g (q hi) + g + 8 (q lo)
  const S = Array.from({ length: 8 }, () => new Array<number>(16).fill(0));
  for (let lane = 0; lane < 32; lane++) {
    const g = lane >> 2, t = lane & 3;
    for (let nt = 0; nt < 2; nt++) for (let c = 0; c < 2; c++) S[g][8 * nt + 2 * t + c] = sacc[nt][lane][c] + sacc[nt][lane][2 + c];
  }
  // P = the scores themselves (the index math is what is checked): a0 n-tile 0 hi, a1 its lo, a2/a3 n-tile 1
  const pa: Frag = Array.from({ length: 32 }, (_, lane) => {
    const g = lane >> 2, t = lane & 3;
    const p = (nt: number, c: number) => S[g][8 * nt + 2 * t + c];
    return [[p(0, 0), p(0, 1)], [0, 0], [p(1, 0), p(1, 1)], [0, 0]];
  });
  // V by ldmatrix.x4.trans: lane L addresses row (L & 7) + 8 ((L >> 3) & 1) of the warp, chunk 2 dp + (L >> 4)
  const o = Array.from({ length: 8 }, () => Array.from({ length: 32 }, () => [0, 0, 0, 0]));
  const banksV: number[][] = [];
  for (let dp = 0; dp < 4; dp++) {
    const rowAddr: number[] = [];
    for (let L = 0; L < 32; L++) {
      const vrow = 16 * w + (L & 7) + 8 * ((L >> 3) & 1), ch = 2 * dp + (L >> 4);
      rowAddr.push(vBase + vrow * 128 + (ch ^ (vrow & 7)) * 16);
    }
    banksV.push(rowAddr);
    // .trans: thread T gets, of matrix i (rows = the 8 addresses of lanes 8i..8i+7), elements
    // [row 2 (T % 4)][col T / 4] and [row 2 (T % 4) + 1][col T / 4]
    const reg = (T: number, i: number) => {
      const t = T & 3, g = T >> 2;
      return [sm.get(rowAddr[8 * i + 2 * t] + 2 * g), sm.get(rowAddr[8 * i + 2 * t + 1] + 2 * g)];
    };
    const b0: Frag = [], b1: Frag = [];
    for (let T = 0; T < 32; T++) {
      b0.push([reg(T, 0), reg(T, 1)]);
      b1.push([reg(T, 2), reg(T, 3)]);
    }
    mma(pa, b0, o[2 * dp]);
    mma(pa, b1, o[2 * dp + 1]);
  }
  const O = Array.from({ length: 8 }, () => new Array<number>(D).fill(0));
  for (let lane = 0; lane < 32; lane++) {
    const g = lane >> 2, t = lane & 3;
    for (let dt = 0; dt < 8; dt++) for (let c = 0; c < 2; c++) O[g][8 * dt + 2 * t + c] = o[dt][lane][c] + o[dt][lane][2 + c];
  }
  return { S, O, banksK, banksV };
}

// Bank of each 4-byte word a phase touches: a 16-byte-a-lane access runs 8 lanes a phase.
function phasesConflictFree(addrs: number[]): boolean {
  for (let p = 0; p < 32; p += 8) {
    const banks = new Set<number>();
    for (let l = p; l < p + 8; l++) for (let wd = 0; wd < 4; wd++) banks.add(((addrs[l] + 4 * wd) >> 2) & 31);
    if (banks.size !== 32) return false;
  }
  return true;
}

describe('decode mma attention: host emulation of the kernel index math', () => {
  it('splits cover [lo, pos] exactly, in whole tiles from lo', () => {
    for (const window of [0, 128, 300]) {
      for (const ctx of [1, 48, 100, 1000, 8324, 33000]) {
        const splits = mmaSplits(ctx, window);
        expect(splits).toBeGreaterThanOrEqual(1);
        expect(splits).toBeLessThanOrEqual(64);
        for (const pos of [0, 1, 63, 64, 127, 128, 517, ctx - 1].filter((p) => p >= 0 && p < ctx)) {
          const lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
          let next = lo;
          for (const [b, e] of splitRanges(pos, window, splits)) {
            if (b >= e) continue;  // an empty split
            expect(b).toBe(next);
            expect((b - lo) % TILE).toBe(0);
            next = e;
          }
          expect(next).toBe(pos + 1);
        }
      }
    }
  });

  for (const kHalf of [false, true]) {
    it(`one warp's tile equals the plain dot products (${kHalf ? '16-bit' : 'f32'} K)`, () => {
      const r = rng(kHalf ? 7 : 3);
      const exact = (x: number): [number, number] => [x, 0];
      for (const G of [8, 4]) {
        const q = Array.from({ length: G }, () => Array.from({ length: D }, () => r() * 2 - 1));
        const K = Array.from({ length: TILE }, () => Array.from({ length: D }, () => r() * 2 - 1));
        const V = Array.from({ length: TILE }, () => Array.from({ length: D }, () => r() * 2 - 1));
        for (let w = 0; w < 4; w++) {
          const { S, O, banksK, banksV } = emulateWarp(w, kHalf, q, G, K, V, exact);
          for (let g = 0; g < G; g++) {
            for (let j = 0; j < 16; j++) {
              let s = 0;
              for (let d = 0; d < D; d++) s += q[g][d] * K[16 * w + j][d];
              expect(S[g][j]).toBeCloseTo(s, 9);
            }
            for (let d = 0; d < D; d++) {
              let acc = 0;
              for (let j = 0; j < 16; j++) acc += S[g][j] * V[16 * w + j][d];
              expect(O[g][d]).toBeCloseTo(acc, 9);
            }
          }
          for (const a of banksK) expect(phasesConflictFree(a)).toBe(true);
          for (const a of banksV) expect(phasesConflictFree(a)).toBe(true);
        }
      }
    });
  }

  it('q.k with bf16 hi + lo of q and of f32 K stays within 2^-15 of sum |q_i k_i| (f32 FMA: 2^-24 x D)', () => {
    const r = rng(11);
    const split = (x: number): [number, number] => {
      const h = bf16(x);
      return [h, bf16(fr(x - h))];
    };
    let worstMma = 0, worstF32 = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const scale = 10 ** (r() * 4 - 2);  // |x| from 1e-2 to 1e2: gpt-oss's RMS-normed rows and more
      const q = Array.from({ length: D }, () => fr((r() * 2 - 1) * scale));
      const k = Array.from({ length: D }, () => fr((r() * 2 - 1) * scale));
      let exact = 0, mag = 0, f = 0, m = 0;
      for (let d = 0; d < D; d++) {
        exact += q[d] * k[d];
        mag += Math.abs(q[d] * k[d]);
        f = fr(f + fr(q[d] * k[d]));  // f32 FMA bound: one rounding a step
        const [qh, ql] = split(q[d]), [kh, kl] = split(k[d]);
        m = fr(m + fr(qh * kh + qh * kl + ql * kh + ql * kl));  // products exact in f32; f32 sums
      }
      worstMma = Math.max(worstMma, Math.abs(m - exact) / mag);
      worstF32 = Math.max(worstF32, Math.abs(f - exact) / mag);
    }
    expect(worstMma).toBeLessThan(2 ** -15);
    expect(worstF32).toBeLessThan(D * 2 ** -24);
    // the figures bench/RESULTS.md quotes (issue 12 item 3)
    console.log(`decode mma q.k: worst |err| / sum|q_i k_i| ${worstMma.toExponential(2)} (f32 sums ${worstF32.toExponential(2)})`);
  });

  it('P hi + lo in f16 (the f16 P V MMA, lo scaled by 2^12) keeps P to 2^-21 relative (to 2^-34 absolute below f16 normals)', () => {
    const r = rng(5);
    let worstRel = 0, worstAbs = 0, worstUnscaled = 0;
    for (let i = 0; i < 20000; i++) {
      const p = fr(2 ** (-r() * 30));  // exp2 of scores up to 30 below the running max
      const h = f16(p), l = f16((p - h) * 4096) / 4096;
      if (p >= 2 ** -14) worstRel = Math.max(worstRel, Math.abs(h + l - p) / p);
      else worstAbs = Math.max(worstAbs, Math.abs(h + l - p));
      worstUnscaled = Math.max(worstUnscaled, Math.abs(h + f16(p - h) - p));
    }
    expect(worstRel).toBeLessThan(2 ** -21);
    expect(worstAbs).toBeLessThan(2 ** -34);
    expect(worstUnscaled).toBeGreaterThan(2 ** -27);  // why the scale: unscaled, ~2^-25 absolute is lost
    console.log(`decode mma P (f16 hi + lo): worst relative ${worstRel.toExponential(2)}, absolute ${worstAbs.toExponential(2)} (unscaled lo: ${worstUnscaled.toExponential(2)})`);
  });
});
