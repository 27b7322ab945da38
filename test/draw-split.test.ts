// Host emulation of the CUDA draws split over the vocabulary (native/cuda/sample.cu: draw_max_kernel,
// draw_sum_kernel, draw_pick_kernel; generate()'s default draw at temperature 1 with no top-k / top-p), so the
// index math a GPU run would otherwise be the first to exercise is checked in CI: the slices (draw_slices,
// draw_run: 2,048 values a slice, a thread's contiguous run), the pick of the slice where u x total falls and the
// walk inside it, and the fallbacks. Each emulated draw must equal sampleFromLogits (the device rule written in
// TypeScript, as cpu/sample.cpp) on rows of 1, 2, 3 and 99 slices, flat and peaked, with min-p, u = 0 and u just
// below 1. The sums run in f64 in another order than the reference's, so a draw could differ only where u x total
// falls within ~1e-16 of a cumulative sum: never on these seeded rows.
import { describe, expect, it } from 'vitest';
import { createRng, sampleFromLogits } from '../lib/sampling.js';

const THREADS = 256, PER_THREAD = 8, MAX_SLICES = THREADS;
const f32 = Math.fround;

function drawSlices(v: number): number {
  return Math.max(1, Math.min(Math.ceil(v / (THREADS * PER_THREAD)), MAX_SLICES));
}
function drawRun(v: number, S: number, s: number, t: number): { lo: number; hi: number; a: number; b: number } {
  const perBlock = Math.ceil(v / S);
  const lo = Math.min(v, s * perBlock), hi = Math.min(v, lo + perBlock);
  const perThread = Math.ceil(perBlock / THREADS);
  const a = Math.min(hi, lo + t * perThread), b = Math.min(hi, a + perThread);
  return { lo, hi, a, b };
}

// The three kernels in order, threads and blocks run one after another (their sums: a thread's run in index order,
// then the threads, as the block scan's aggregate, in thread order).
function splitDraw(l: Float32Array, temperature: number, minP: number, uniform: number): number {
  const v = l.length, S = drawSlices(v);
  // draw_max_kernel + draw_row_best: the row's max, first index on ties
  let best = -1;
  for (let s = 0; s < S; s++) {
    const r = drawRun(v, S, s, 0);
    for (let i = r.lo; i < r.hi; i++) if (best < 0 || l[i]! > l[best]!) best = i;
  }
  const m = l[best]!, T = f32(temperature), u = f32(uniform);
  const pv = new Float32Array(v);  // the kernels compute p_i where they need it, from the same expression
  for (let i = 0; i < v; i++) pv[i] = Math.exp(f32(f32(l[i]! - m) / T));
  const p = (i: number) => pv[i]!;
  const kept = (x: number) => x >= f32(minP);
  // draw_sum_kernel: each slice's kept mass and last kept index
  const mass: number[] = [], last: number[] = [];
  const runSum = (r: { a: number; b: number }) => {
    let mine = 0;
    for (let i = r.a; i < r.b; i++) if (kept(p(i))) mine += p(i);
    return mine;
  };
  for (let s = 0; s < S; s++) {
    let total = 0, lastKept = -1;
    for (let t = 0; t < THREADS; t++) {
      const r = drawRun(v, S, s, t);
      total += runSum(r);
      for (let i = r.a; i < r.b; i++) if (kept(p(i))) lastKept = Math.max(lastKept, i);
    }
    mass.push(total);
    last.push(lastKept);
  }
  // draw_pick_kernel
  let total = 0, lastKept = -1;
  for (let s = 0; s < S; s++) {
    total += mass[s]!;
    lastKept = Math.max(lastKept, last[s]!);
  }
  const target = u * total;
  let start = 0, s = 0;
  for (; s < S && !(start + mass[s]! > target); s++) start += mass[s]!;
  if (s === S) return lastKept;
  let excl = start;
  let found = -1;
  for (let t = 0; t < THREADS && found < 0; t++) {
    const r = drawRun(v, S, s, t);
    const mine = runSum(r);
    let cum = excl;
    if (cum + mine > target) {
      for (let i = r.a; i < r.b; i++) {
        const x = p(i);
        if (kept(x)) {
          cum += x;
          if (cum > target) {
            found = i;
            break;
          }
        }
      }
    }
    excl += mine;
  }
  return found >= 0 ? found : last[s]!;
}

describe('CUDA draws split over the vocabulary (host emulation of sample.cu draw_*_kernel)', () => {
  it('slices: 2,048 values each up to 256 slices, the runs tile each slice once in index order', () => {
    expect([1000, 2048, 2049, 4096, 201088, 600000].map(drawSlices)).toEqual([1, 1, 2, 2, 99, 256]);
    for (const v of [1, 5, 1000, 2049, 4097, 201088, 600000]) {
      const S = drawSlices(v);
      let next = 0;
      for (let s = 0; s < S; s++)
        for (let t = 0; t < THREADS; t++) {
          const r = drawRun(v, S, s, t);
          if (r.a === r.b) continue;
          expect(r.a, `v ${v} slice ${s} thread ${t}`).toBe(next);
          next = r.b;
        }
      expect(next, `v ${v}`).toBe(v);
    }
  });

  it('every draw equals sampleFromLogits: vocabularies of 1, 2, 3 and 99 slices, flat and peaked rows, min-p, u at the ends', () => {
    const rng = createRng(20261207);
    let draws = 0;
    for (const v of [1000, 2049, 4100, 201088]) {
      for (const peaked of [false, true]) {
        const l = new Float32Array(v);
        for (let i = 0; i < v; i++) l[i] = f32((rng.nextUniform() * 2 - 1) * (peaked ? 8 : 2));
        if (peaked) l[Math.floor(v / 2)] = f32(l[Math.floor(v / 2)]! + 30);
        for (const [temperature, minP] of [[1, 0], [0.6, 0], [1.3, 0.02], [2, 0], [1, 0.5]] as const) {
          const us = [0, f32(1 - 2 ** -24), ...Array.from({ length: v > 100000 ? 2 : 6 }, () => rng.nextUniform())];
          for (const u of us) {
            const want = sampleFromLogits(l, { temperature, minP }, u);
            expect(splitDraw(l, temperature, minP, u), `v ${v} peaked ${peaked} T ${temperature} min-p ${minP} u ${u}`).toBe(want);
            draws++;
          }
        }
      }
    }
    expect(draws).toBe(4 * 2 * 5 * 8 - 2 * 5 * 4);
  });
});
