// CPU kernel microbenchmarks at gpt-oss-20b shapes, reported as GB/s of weights (or KV cache) read,
// next to this machine's read bandwidth measured in the same run (ops.readBandwidth: all threads
// summing 1 GiB). Inputs rotate over several copies whose total exceeds the last-level cache, so
// every call streams from DRAM as a real decode step does.
//
//   node bench/cpu-kernels.mjs [--isa scalar|avx2|avxvnni|avx512|avx512vnni] [--threads N] [--quick] [--only mxfp4|gguf]
//
// --cpu-time (for a loaded, shared machine): one thread, weights reused from cache (no rotation), and
// each case timed by the process's CPU time (process.cpuUsage) over a loop of calls, so time slices
// given to other processes do not count: the kernels' compute ceiling per core, in GB/s of weights,
// to set against this core's share of the read bandwidth.
//
// Each line gives the mean and, in brackets, the fastest call (on a shared machine the minimum is the
// figure least disturbed by other processes). The MoE cases run with f32 (exact) and q8 activations.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
// One harness for every kernel benchmark: lib/bench.ts's measure (benchmark.js), as `gpt-oss bench` uses.
import { measure } from '../dist/bench.js';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const addon = process.env.GPT_OSS_NODE_BINARY ? require(process.env.GPT_OSS_NODE_BINARY) : require('node-gyp-build')(root);
const { ops, Tensor } = addon;

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (opt('--isa')) ops.setIsa(opt('--isa'));
if (opt('--threads')) ops.setThreads(Number(opt('--threads')));
const quick = args.includes('--quick');
const cpuTime = args.includes('--cpu-time');
if (cpuTime) ops.setThreads(1);
const LLC = cpuTime ? 0 : 64 << 20; // rotate over at least this many bytes of weights per case

function randomBytes(n) {
  const b = new Uint8Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i += 4) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    b[i] = s; b[i + 1] = s >>> 8; b[i + 2] = s >>> 16; b[i + 3] = s >>> 24;
  }
  return b;
}
function randomF32(n) {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = Math.sin(i * 12.9898) * 0.5;
  return f;
}
// bf16 bits of small random values (exponent kept in range so sums stay finite).
function randomBf16(n) {
  const w = new Uint16Array(n);
  const b = randomBytes(n * 2);
  for (let i = 0; i < n; i++) w[i] = 0x3c00 | (b[2 * i] & 0x7f) | ((b[2 * i + 1] & 0x80) << 8);
  return w;
}
const copiesFor = (bytes) => (cpuTime ? 1 : Math.max(2, Math.ceil(LLC / bytes)));

async function time(fn) {
  if (cpuTime) {
    // Best of 5 runs of >= 0.2 s CPU each; CPU seconds per call.
    fn();
    let best = Infinity, sum = 0;
    for (let rep = 0; rep < 5; rep++) {
      const c0 = process.cpuUsage();
      let calls = 0, used = 0;
      do {
        fn();
        calls++;
        const c = process.cpuUsage(c0);
        used = (c.user + c.system) / 1e6;
      } while (used < (quick ? 0.1 : 0.2));
      best = Math.min(best, used / calls);
      sum += used / calls;
    }
    return { avg: sum / 5, min: best };
  }
  const t = measure(fn, { quick }); // benchmark.js: mean and fastest sample, seconds per call
  return { avg: t.seconds, min: t.minSeconds };
}

const results = [];
async function report(name, bytesPerCall, fn) {
  const { avg: sec, min } = await time(fn);
  const gbs = bytesPerCall / sec / 1e9, best = bytesPerCall / min / 1e9;
  results.push({ name, us: sec * 1e6, gbs, minUs: min * 1e6, bestGbs: best });
  console.log(`${name.padEnd(48)} ${(sec * 1e6).toFixed(1).padStart(10)} us  ${gbs.toFixed(1).padStart(6)} GB/s  ${((gbs / bandwidth) * 100).toFixed(0).padStart(4)}% of read bw  [min ${(min * 1e6).toFixed(1)} us, ${best.toFixed(1)} GB/s, ${((best / bandwidth) * 100).toFixed(0)}%]`);
}
const only = opt('--only');

const info = ops.cpuInfo();
const bandwidth = ops.readBandwidth(1024, 5);
console.log(`cpu: isa ${info.isa} (best ${info.bestIsa}), ${info.threads} threads; read bandwidth ${bandwidth.toFixed(1)} GB/s (1 GiB sum, best of 5)`);

// ---- MXFP4 expert matvec (gpt-oss-20b: hidden 2880, intermediate 2880) ----
for (const [name, rows, cols] of only === 'gguf' ? [] : [['mxfp4 matvec gate_up [5760, 2880]', 5760, 2880], ['mxfp4 matvec down [2880, 2880]', 2880, 2880]]) {
  const bytes = (rows * cols) / 2 + (rows * cols) / 32;
  const n = copiesFor(bytes);
  const ws = Array.from({ length: n }, () => new Tensor('mxfp4', [rows, cols], 'cpu', randomBytes((rows * cols) / 2), new Uint8Array((rows * cols) / 32).fill(121)));
  const x = new Tensor('f32', [1, cols], 'cpu', randomF32(cols));
  const out = new Tensor('f32', [1, rows], 'cpu');
  let i = 0;
  await report(name, bytes, () => ops.linear(x, ws[i++ % n], null, out));
}

// ---- the GGUF / denseWeights 'q8' formats against bf16 at the attention's decode shape (q, k, v of the
// 20b: [5120, 2880]) and ggml-block MXFP4 at the experts' (issue 15: where a 20b GGUF decode step goes) ----
if (!only || only === 'formats') {
  const rows = 5120, cols = 2880, blocks = (rows * cols) / 32;
  const q8 = () => {
    const b = randomBytes(blocks * 34);
    for (let g = 0; g < blocks; g++) { b[g * 34] = 0x00; b[g * 34 + 1] = 0x20; } // d = 2^-7 (f16 0x2000)
    return b;
  };
  const ggml = (r, c) => {
    const b = randomBytes((r * c) / 32 * 17);
    for (let g = 0; g < (r * c) / 32; g++) b[g * 17] = 121;
    return b;
  };
  const cases = [
    ['bf16 matvec attn [5120, 2880]', rows * cols * 2, () => new Tensor('bf16', [rows, cols], 'cpu', randomBf16(rows * cols))],
    ['q8_0 matvec attn [5120, 2880]', blocks * 34, () => new Tensor('q8_0', [rows, cols], 'cpu', q8())],
    ['mxfp4-ggml matvec gate [2880, 2880] (f32 x)', (2880 * 2880) / 32 * 17, () => new Tensor('mxfp4-ggml', [2880, 2880], 'cpu', ggml(2880, 2880))],
  ];
  for (const [name, bytes, make] of cases) {
    const n = copiesFor(bytes);
    const ws = Array.from({ length: n }, make);
    const [r, c] = ws[0].shape;
    const x = new Tensor('f32', [1, c], 'cpu', randomF32(c));
    const out = new Tensor('f32', [1, r], 'cpu');
    let i = 0;
    await report(name, bytes, () => ops.linear(x, ws[i++ % n], null, out));
  }
}

// ---- the decode kernels' compute ceiling: one expert small enough for L2 (gate_up [256, 2880] +
// down [2880, 128], 0.59 MB), so no DRAM traffic: GB/s of weights a core can decode and multiply.
if (only !== 'gguf') {
  const H = 2880, I = 128;
  const w = {
    gateUp: new Tensor('mxfp4', [1, 2 * I, H], 'cpu', randomBytes(I * H), new Uint8Array((2 * I * H) / 32).fill(121)),
    gateUpBias: new Tensor('bf16', [1, 2 * I], 'cpu'),
    down: new Tensor('mxfp4', [1, H, I], 'cpu', randomBytes((H * I) / 2), new Uint8Array((H * I) / 32).fill(120)),
    downBias: new Tensor('bf16', [1, H], 'cpu'),
  };
  const x = new Tensor('f32', [1, H], 'cpu', randomF32(H));
  const idx = new Tensor('i32', [1, 1], 'cpu', Int32Array.from([0]));
  const wt = new Tensor('f32', [1, 1], 'cpu', new Float32Array([1]));
  const out = new Tensor('f32', [1, H], 'cpu');
  const bytes = ((3 * H * I) / 2) * (1 + 1 / 16);
  for (const mode of ['f32', 'q8'])
    await report(`mxfp4 decode, L2-resident expert (hot) ${mode}`, bytes, () => ops.moe(x, idx, wt, { ...w, activations: mode }, undefined, out));
}

// ---- MoE decode step: 4 experts of 32, gate_up + swiglu + down ----
if (only !== 'gguf') {
  const E = 32, H = 2880, I = 2880;
  const gateUp = new Tensor('mxfp4', [E, 2 * I, H], 'cpu', randomBytes(E * I * H), new Uint8Array((E * 2 * I * H) / 32).fill(121));
  const down = new Tensor('mxfp4', [E, H, I], 'cpu', randomBytes((E * H * I) / 2), new Uint8Array((E * H * I) / 32).fill(120));
  const w = { gateUp, gateUpBias: new Tensor('bf16', [E, 2 * I], 'cpu'), down, downBias: new Tensor('bf16', [E, H], 'cpu') };
  const x = new Tensor('f32', [1, H], 'cpu', randomF32(H));
  const wt = new Tensor('f32', [1, 4], 'cpu', new Float32Array([0.4, 0.3, 0.2, 0.1]));
  const out = new Tensor('f32', [1, H], 'cpu');
  const idx = Array.from({ length: 8 }, (_, j) => new Tensor('i32', [1, 4], 'cpu', Int32Array.from([0, 1, 2, 3], (k) => (j * 4 + k) % E)));
  let i = 0;
  const bytes = 4 * ((3 * H * I) / 2) * (1 + 1 / 16);
  const wq = { ...w, activations: 'q8' };
  for (const [mode, ww] of [['f32', w], ['q8', wq]])
    await report(`moe decode (4 of 32 experts, 20b shapes) ${mode}`, bytes, () => ops.moe(x, idx[i++ % idx.length], wt, ww, undefined, out));
  // Prefill: 64 tokens, top-4 of 32 experts; weights read once per expert group.
  const n = 64;
  const xs = new Tensor('f32', [n, H], 'cpu', randomF32(n * H));
  const ids = new Int32Array(n * 4);
  for (let t = 0; t < n; t++) for (let k = 0; k < 4; k++) ids[t * 4 + k] = (t * 7 + k * 5) % E;
  const idxN = new Tensor('i32', [n, 4], 'cpu', ids);
  const wtN = new Tensor('f32', [n, 4], 'cpu', new Float32Array(n * 4).fill(0.25));
  const outN = new Tensor('f32', [n, H], 'cpu');
  const used = new Set(ids).size;
  for (const [mode, ww] of [['f32', w], ['q8', wq]])
    await report(`moe prefill 64 tokens (${used} experts touched) ${mode}`, used * ((3 * H * I) / 2) * (1 + 1 / 16), () => ops.moe(xs, idxN, wtN, ww, undefined, outN));
  // Prefill as a model routes it: random top-4 per token, so at 32 tokens each expert gets ~4 tokens
  // (1 to ~9), at 128 ~16. Reported as model FLOP/s (2 * tokens * 4 experts * 3 * H * I) against the
  // ~225 GFLOP/s f32 FMA peak of 2 Zen 4 cores (bench/RESULTS.md, CPU kernels).
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  for (const m of [32, 128]) {
    const xm = new Tensor('f32', [m, H], 'cpu', randomF32(m * H));
    const idm = new Int32Array(m * 4);
    for (let t = 0; t < m; t++) {
      const order = Array.from({ length: E }, (_, e) => e).sort(() => rnd() - 0.5);
      idm.set(order.slice(0, 4), t * 4);
    }
    const idxM = new Tensor('i32', [m, 4], 'cpu', idm);
    const wtM = new Tensor('f32', [m, 4], 'cpu', new Float32Array(m * 4).fill(0.25));
    const outM = new Tensor('f32', [m, H], 'cpu');
    for (const [mode, ww] of [['f32', w], ['q8', wq]]) {
      const { avg: sec, min } = await time(() => ops.moe(xm, idxM, wtM, ww, undefined, outM));
      const gflops = (2 * m * 4 * 3 * H * I) / sec / 1e9, best = (2 * m * 4 * 3 * H * I) / min / 1e9;
      const name = `moe prefill ${m} tokens, random top-4 ${mode}`;
      results.push({ name, us: sec * 1e6, gflops, minUs: min * 1e6, bestGflops: best });
      console.log(`${name.padEnd(48)} ${(sec * 1e6).toFixed(1).padStart(10)} us  ${gflops.toFixed(0).padStart(6)} GFLOP/s  [min ${(min * 1e6).toFixed(1)} us, ${best.toFixed(0)} GFLOP/s] (f32 FMA peak ~225 on 2 Zen 4 cores)`);
    }
  }
}

// ---- the GGUF forms (gpt-oss-20b-mxfp4.gguf's types): experts in ggml's 17-byte MXFP4 blocks with gate
// and up apart, attention and LM head in Q8_0. --only gguf runs just these.
if (only === 'gguf' || !only) {
  const E = 32, H = 2880, I = 2880;
  // ggml MXFP4 [rows, cols]: per 32 values the E8M0 scale byte (121: 2^-6) then 16 bytes of codes.
  const ggmlBlocks = (rows, cols) => {
    const nb = (rows * cols) / 32, b = randomBytes(nb * 17);
    for (let i = 0; i < nb; i++) b[i * 17] = 121;
    return b;
  };
  // Q8_0 [rows, cols]: per 32 values an f16 scale (0x2000 = 2^-15 x 2^... a small normal) then 32 int8.
  const q8Blocks = (rows, cols) => {
    const nb = (rows * cols) / 32, b = randomBytes(nb * 34);
    for (let i = 0; i < nb; i++) { b[i * 34] = 0x00; b[i * 34 + 1] = 0x20; }
    return b;
  };
  const w = {
    gate: new Tensor('mxfp4-ggml', [E, I, H], 'cpu', ggmlBlocks(E * I, H)), gateBias: new Tensor('f32', [E, I], 'cpu'),
    up: new Tensor('mxfp4-ggml', [E, I, H], 'cpu', ggmlBlocks(E * I, H)), upBias: new Tensor('f32', [E, I], 'cpu'),
    down: new Tensor('mxfp4-ggml', [E, H, I], 'cpu', ggmlBlocks(E * H, I)), downBias: new Tensor('f32', [E, H], 'cpu'),
  };
  const x = new Tensor('f32', [1, H], 'cpu', randomF32(H));
  const wt = new Tensor('f32', [1, 4], 'cpu', new Float32Array([0.4, 0.3, 0.2, 0.1]));
  const out = new Tensor('f32', [1, H], 'cpu');
  const idx = Array.from({ length: 8 }, (_, j) => new Tensor('i32', [1, 4], 'cpu', Int32Array.from([0, 1, 2, 3], (k) => (j * 4 + k) % E)));
  let i = 0;
  const bytes = 4 * 3 * H * I * (17 / 32);
  for (const mode of ['f32', 'q8'])
    await report(`gguf moe decode (4 of 32, ggml blocks) ${mode}`, bytes, () => ops.moe(x, idx[i++ % idx.length], wt, { ...w, activations: mode }, undefined, out));
  let seed = 4321;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const m = 128;
  const xm = new Tensor('f32', [m, H], 'cpu', randomF32(m * H));
  const idm = new Int32Array(m * 4);
  for (let t = 0; t < m; t++) idm.set(Array.from({ length: E }, (_, e) => e).sort(() => rnd() - 0.5).slice(0, 4), t * 4);
  const idxM = new Tensor('i32', [m, 4], 'cpu', idm);
  const wtM = new Tensor('f32', [m, 4], 'cpu', new Float32Array(m * 4).fill(0.25));
  const outM = new Tensor('f32', [m, H], 'cpu');
  for (const mode of ['f32', 'q8']) {
    const { avg: sec, min } = await time(() => ops.moe(xm, idxM, wtM, { ...w, activations: mode }, undefined, outM));
    const flop = 2 * m * 4 * 3 * H * I, name = `gguf moe prefill ${m} tokens, random top-4 ${mode}`;
    results.push({ name, us: sec * 1e6, gflops: flop / sec / 1e9, minUs: min * 1e6, bestGflops: flop / min / 1e9 });
    console.log(`${name.padEnd(48)} ${(sec * 1e6).toFixed(1).padStart(10)} us  ${(flop / sec / 1e9).toFixed(0).padStart(6)} GFLOP/s  [min ${(min * 1e6).toFixed(1)} us, ${(flop / min / 1e9).toFixed(0)} GFLOP/s]`);
  }
  for (const [name, rows, cols] of [['q8_0 matvec qkv [5120, 2880]', 4096 + 1024, 2880], ['q8_0 matvec attn_output [2880, 4096]', 2880, 4096], ...(quick ? [] : [['q8_0 matvec lm_head [201088, 2880]', 201088, 2880]])]) {
    const bytesQ = (rows * cols * 34) / 32;
    const n = Math.min(copiesFor(bytesQ), 8);
    const ws = Array.from({ length: n }, () => new Tensor('q8_0', [rows, cols], 'cpu', q8Blocks(rows, cols)));
    const xq = new Tensor('f32', [1, cols], 'cpu', randomF32(cols));
    const o = new Tensor('f32', [1, rows], 'cpu');
    let k = 0;
    await report(name, bytesQ, () => ops.linear(xq, ws[k++ % n], null, o));
  }
  // Prefill through the Q8_0 attention projections: model GFLOP/s (2 * tokens * rows * cols).
  {
    const rows = 4096, cols = 2880, m = 128;
    const wq = new Tensor('q8_0', [rows, cols], 'cpu', q8Blocks(rows, cols));
    const xm = new Tensor('f32', [m, cols], 'cpu', randomF32(m * cols));
    const om = new Tensor('f32', [m, rows], 'cpu');
    const { avg: sec, min } = await time(() => ops.linear(xm, wq, null, om));
    const flop = 2 * m * rows * cols, name = `q8_0 matmul n=${m} [${rows}, ${cols}]`;
    results.push({ name, us: sec * 1e6, gflops: flop / sec / 1e9, minUs: min * 1e6, bestGflops: flop / min / 1e9 });
    console.log(`${name.padEnd(48)} ${(sec * 1e6).toFixed(1).padStart(10)} us  ${(flop / sec / 1e9).toFixed(0).padStart(6)} GFLOP/s  [min ${(min * 1e6).toFixed(1)} us, ${(flop / min / 1e9).toFixed(0)} GFLOP/s]`);
  }
}

if (only === 'mxfp4' || only === 'gguf') {
  if (args.includes('--json')) console.log(JSON.stringify({ cpu: info, bandwidth, results }, null, 2));
  process.exit(0);
}

// ---- bf16 matvec ----
for (const [name, rows, cols] of [['bf16 matvec qkv [6144, 2880]', 4096 + 1024 + 1024, 2880], ['bf16 matvec lm_head [201088, 2880]', 201088, 2880]]) {
  const bytes = rows * cols * 2;
  const n = Math.min(copiesFor(bytes), quick ? 2 : 8);
  const ws = Array.from({ length: n }, () => new Tensor('bf16', [rows, cols], 'cpu', randomBf16(rows * cols)));
  const x = new Tensor('f32', [1, cols], 'cpu', randomF32(cols));
  const out = new Tensor('f32', [1, rows], 'cpu');
  let i = 0;
  await report(name, bytes, () => ops.linear(x, ws[i++ % n], null, out));
  if (rows < 10000) {
    const xs = new Tensor('f32', [32, cols], 'cpu', randomF32(32 * cols));
    const outs = new Tensor('f32', [32, rows], 'cpu');
    await report(name.replace('matvec', 'matmul n=32'), bytes, () => ops.linear(xs, ws[i++ % n], null, outs));
  }
}

// ---- rmsnorm [1, 2880] and [128, 2880] ----
for (const n of [1, 128]) {
  const x = new Tensor('f32', [n, 2880], 'cpu', randomF32(n * 2880));
  const w = new Tensor('bf16', [2880], 'cpu', randomBf16(2880));
  const out = new Tensor('f32', [n, 2880], 'cpu');
  await report(`rmsnorm [${n}, 2880]`, n * 2880 * 8, () => ops.rmsnorm(x, w, 1e-5, out));
}

// ---- attention decode: 64 query heads, 8 kv heads, head dim 64 ----
for (const ctx of [1024, 4096]) {
  const Hq = 64, Hkv = 8, D = 64;
  const bytes = 2 * ctx * Hkv * D * 4;
  const n = copiesFor(bytes);
  const caches = Array.from({ length: n }, () => [new Tensor('f32', [ctx, Hkv, D], 'cpu', randomF32(ctx * Hkv * D)), new Tensor('f32', [ctx, Hkv, D], 'cpu', randomF32(ctx * Hkv * D))]);
  const q = new Tensor('f32', [1, Hq, D], 'cpu', randomF32(Hq * D));
  const sinks = new Tensor('bf16', [Hq], 'cpu');
  const pos = new Tensor('i32', [1], 'cpu', Int32Array.from([ctx - 1]));
  const out = new Tensor('f32', [1, Hq, D], 'cpu');
  let i = 0;
  await report(`attention decode ctx ${ctx} (64q/8kv x 64)`, bytes, () => {
    const [k, v] = caches[i++ % n];
    ops.attention(q, k, v, sinks, pos, 0, 0.125, out);
  });
}

if (args.includes('--json')) console.log(JSON.stringify({ cpu: info, bandwidth, results }, null, 2));
