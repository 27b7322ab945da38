#!/usr/bin/env node
// Load-time quantizers' throughput on this machine: experts bf16 -> MXFP4 (loadModel's experts: 'mxfp4'
// for a fine-tuned bf16 checkpoint) and dense bf16 -> Q8_0 (denseWeights: 'q8'), in GB of bf16 input a
// second, and what that implies for the 20b shape (24 layers of 32 experts, hidden 2880, intermediate
// 2880: 38.2 GB of bf16 experts; 1.31 GB of dense matrices that q8 quantizes), and the host repack a GGUF's
// experts get on their way to a GPU (ggml MXFP4 blocks -> Hugging Face blocks; 10.15 GB for 20b), and the
// transpose bf16 experts get on their way to CUDA (experts: 'bf16': [E, in, out] -> [E, out, in]; 38.2 GB).
// Both quantizers are timed under every ISA this CPU runs (scalar reference, avx2, avx512: the
// SIMD sets write the same bytes, test/cpu/quantizers.test.ts); the headline figure is the best one.
//   node bench/quantizers.mjs [--experts 4] [--reps 3] [--cpu-time]
// --cpu-time (a loaded, shared machine): one thread, timed by the process's CPU time, so the figure is
// one core's throughput, whatever else runs.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { cpuInfo, mxfp4FromGgml, quantizeMxfp4, quantizeQ8, setIsa, setThreads, transposeExperts } from '../dist/ops.js';
import { Tensor } from '../dist/tensor.js';

const argv = process.argv.slice(2);
const opt = (name, d) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : d; };
const E = opt('--experts', 4), reps = opt('--reps', 3);
const cpuTime = argv.includes('--cpu-time');
if (cpuTime) setThreads(1);
const H = 2880, I = 2880;

function randomBf16(n) {
  const u = new Uint16Array(n);
  let s = 0x12345678;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    // about N(0, 0.02) in magnitude: random sign, exponent 2^-8..2^-4, random mantissa
    u[i] = ((s >>> 31) << 15) | ((119 + ((s >>> 8) % 5)) << 7) | (s & 127);
  }
  return u;
}
function best(fn) {
  let b = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    b = Math.min(b, cpuTime ? (c.user + c.system) / 1e3 : performance.now() - t0);
  }
  return b / 1e3;
}

const load0 = loadavg()[0];
// gate_up as transformers stores it dequantized: [E, H, 2I] -> MXFP4 [E, 2I, H]
const gu = Tensor.fromBf16(randomBf16(E * H * 2 * I), [E, H, 2 * I]);
const guq = Tensor.empty('mxfp4', [E, 2 * I, H]);
const byIsa = {};
for (const isa of cpuInfo().isas.filter((i) => !i.endsWith('vnni'))) {  // the vnni sets share the quantizer
  setIsa(isa);
  const t = best(() => quantizeMxfp4(gu, guq));
  byIsa[isa] = { seconds: t, gbPerS: gu.nbytes / 1e9 / t };
}
setIsa(cpuInfo().bestIsa);
const tMx = Math.min(...Object.values(byIsa).map((x) => x.seconds));
const mxGBs = (gu.nbytes / 1e9) / tMx;
// a dense matrix [5120, 2880] (q, k, v of one layer) -> Q8_0
const dense = Tensor.fromBf16(randomBf16(5120 * H), [5120, H]);
const dq = Tensor.empty('q8_0', [5120, H]);
const q8ByIsa = {};
for (const isa of cpuInfo().isas.filter((i) => !i.endsWith('vnni'))) {
  setIsa(isa);
  const t = best(() => quantizeQ8(dense, dq));
  q8ByIsa[isa] = { seconds: t, gbPerS: dense.nbytes / 1e9 / t };
}
setIsa(cpuInfo().bestIsa);
const tQ8 = Math.min(...Object.values(q8ByIsa).map((x) => x.seconds));
const q8GBs = (dense.nbytes / 1e9) / tQ8;
// a GGUF's ffn_gate_exps of one layer [32, 2880, 2880] in ggml blocks -> Hugging Face MXFP4 (CUDA upload)
const ggmlBytes = new Uint8Array(32 * 2880 * 2880 / 32 * 17);
for (let i = 0; i < ggmlBytes.length; i++) ggmlBytes[i] = (i * 2654435761) >>> 24;
const ggmlT = Tensor.fromBlocks('mxfp4-ggml', ggmlBytes, [32, 2880, 2880]);
const hfT = Tensor.empty('mxfp4', [32, 2880, 2880]);
const tRepack = best(() => mxfp4FromGgml(ggmlT, hfT));
const repackGBs = (ggmlBytes.length / 1e9) / tRepack;
// experts: 'bf16' onto CUDA: gate_up [E, H, 2I] -> [E, 2I, H] (kernels.transposeExperts, what the upload does)
const guRows = Tensor.empty('bf16', [E, 2 * I, H]);
const tTranspose = best(() => transposeExperts(gu, guRows));
const transposeGBs = (gu.nbytes / 1e9) / tTranspose;
const ggml20b = 24 * 32 * (H * 2 * I + I * H) * 17 / 32 / 1e9;
const experts20b = 24 * 32 * (H * 2 * I + I * H) * 2 / 1e9;   // bf16 bytes
const dense20b = (24 * ((4096 + 512 + 512) * H + H * 4096) + 201088 * H) * 2 / 1e9;
const r = {
  date: new Date().toISOString(), cpuTime, threads: cpuInfo().threads, isa: cpuInfo().isa, load: [load0, loadavg()[0]],
  mxfp4: { shape: [E, H, 2 * I], byIsa, seconds: tMx, gbPerS: mxGBs, experts20bGB: experts20b, experts20bSeconds: experts20b / mxGBs },
  ggmlRepack: { shape: [32, 2880, 2880], seconds: tRepack, gbPerS: repackGBs, experts20bGB: ggml20b, experts20bSeconds: ggml20b / repackGBs },
  transposeBf16: { shape: [E, H, 2 * I], seconds: tTranspose, gbPerS: transposeGBs, experts20bGB: experts20b, experts20bSeconds: experts20b / transposeGBs },
  q8: { shape: [5120, H], byIsa: q8ByIsa, seconds: tQ8, gbPerS: q8GBs, dense20bGB: dense20b, dense20bSeconds: dense20b / q8GBs },
};
console.log(JSON.stringify(r, null, 1));
for (const [isa, x] of Object.entries(byIsa))
  console.log(`experts bf16 -> MXFP4 under ${isa}: ${(x.gbPerS * 1e3).toFixed(0)} MB/s of bf16 -> 20b's ${experts20b.toFixed(1)} GB in ${(experts20b / x.gbPerS).toFixed(1)} ${cpuTime ? 'core-' : ''}s`);
console.log(`experts bf16 -> MXFP4: ${mxGBs.toFixed(3)} GB/s of bf16 on ${r.threads} threads -> 20b's ${experts20b.toFixed(1)} GB in ${(experts20b / mxGBs).toFixed(1)} s (quantizing alone; reading the file is on top)`);
for (const [isa, x] of Object.entries(q8ByIsa))
  console.log(`dense bf16 -> Q8_0 under ${isa}: ${(x.gbPerS * 1e3).toFixed(0)} MB/s of bf16 -> 20b's ${dense20b.toFixed(2)} GB in ${(dense20b / x.gbPerS).toFixed(1)} ${cpuTime ? 'core-' : ''}s`);
console.log(`dense bf16 -> Q8_0: ${q8GBs.toFixed(2)} GB/s -> 20b's ${dense20b.toFixed(2)} GB in ${(dense20b / q8GBs).toFixed(1)} s; load avg ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
console.log(`GGUF experts ggml -> HF MXFP4 (CUDA upload repack): ${repackGBs.toFixed(2)} GB/s -> 20b's ${ggml20b.toFixed(2)} GB in ${(ggml20b / repackGBs).toFixed(1)} s`);
console.log(`experts bf16 [E, in, out] -> [E, out, in] (experts: 'bf16' CUDA upload): ${transposeGBs.toFixed(2)} GB/s -> 20b's ${experts20b.toFixed(1)} GB in ${(experts20b / transposeGBs).toFixed(1)} s`);
