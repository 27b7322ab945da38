// The logit comparisons the GPU model checks share (scripts/gpu-model-check.mjs, scripts/gpu-act-check.mjs).

// Relative L2 distance of a from the reference b (same length).
export const relL2 = (a, b) => {
  let n = 0, d = 0;
  for (let i = 0; i < b.length; i++) { n += (a[i] - b[i]) ** 2; d += b[i] ** 2; }
  return Math.sqrt(n / d);
};
// Index of the largest of a[off .. off + n) relative to off (the first of equals); the whole array by default.
export const argmax = (a, off = 0, n = a.length - off) => { let b = 0; for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i; return b; };
export const hasNaN = (a) => a.some((x) => Number.isNaN(x));
