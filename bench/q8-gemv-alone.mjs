#!/usr/bin/env node
// The Q8_0 GEMV (n = 1) alone at the 20b decode shapes (q, o, k/v, LM head) on the thread pool, weights
// rotated over >= 256 MB so every call reads DRAM as a decode step does: wall GB/s and GB/s per
// CPU-second (process.cpuUsage, every thread), to set beside GPTOSS_PROFILE's per-op wall and CPU time
// inside a decode step (bench/RESULTS.md, issue 15).
//   node bench/q8-gemv-alone.mjs
import { loadavg } from 'node:os';
import { ops, quantizeQ8 } from '../dist/ops.js';
import { Tensor } from '../dist/tensor.js';
const shapes = [[4096, 2880], [2880, 4096], [512, 2880], [201088, 2880]];
for (const [o, i] of shapes) {
  const copies = Math.max(1, Math.ceil(256e6 / (o * i * 34 / 32)));
  const ws = [];
  for (let c = 0; c < copies; c++) {
    const src = new Float32Array(o * i); for (let k = 0; k < src.length; k += 97) src[k] = (k % 13) - 6;
    const q = Tensor.empty('q8_0', [o, i]); quantizeQ8(Tensor.fromF32(src, [o, i]), q); ws.push(q);
  }
  const x = Tensor.fromF32(new Float32Array(i).fill(0.01), [1, i]);
  const y = Tensor.empty('f32', [1, o]);
  const calls = Math.max(8, Math.ceil(3e9 / (o * i * 34 / 32)));
  for (let c = 0; c < copies; c++) ops.linear(x, ws[c], null, y);
  const t = performance.now(), c0 = process.cpuUsage();
  for (let c = 0; c < calls; c++) ops.linear(x, ws[c % copies], null, y);
  const wall = (performance.now() - t) / 1e3, cu = process.cpuUsage(c0), cpu = (cu.user + cu.system) / 1e6;
  const gb = calls * o * i * 34 / 32 / 1e9;
  console.log(`q8_0[${o}, ${i}] x${copies} copies, ${calls} calls: wall ${(gb / wall).toFixed(1)} GB/s, per CPU-second ${(gb / cpu).toFixed(1)} GB/s, CPU ${(cpu / calls * 1e3).toFixed(3)} ms/call; load ${loadavg()[0].toFixed(1)}`);
}
