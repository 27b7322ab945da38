#!/usr/bin/env node
// Every f32 in [0, 6] (and, with --negative, in [-6, -0]) through the load-time MXFP4 quantizer under
// every ISA this CPU runs, against the scalar reference: the E2M1 rounding the SIMD sets do with a
// magic add (native/cpu/quantize_simd.h) must give the scalar's codes for all 1.09e9 of them. Each block
// holds 6.0 (pinning the scale to 2^0) and 31 test values; blocks are quantized a million at a time.
//   node bench/mxfp4-quantize-exhaustive.mjs [--negative] [--blocks 1048576]
import { cpuInfo, quantizeMxfp4, setIsa } from '../dist/ops.js';
import { Tensor } from '../dist/tensor.js';

const argv = process.argv.slice(2);
const negative = argv.includes('--negative');
const at = argv.indexOf('--blocks');
const R = at >= 0 ? Number(argv[at + 1]) : 1 << 20;
const last = 0x40c00000; // bits of 6.0
const isas = cpuInfo().isas.filter((i) => i !== 'scalar');
const bits = new Uint32Array(32 * R);
const src = new Float32Array(bits.buffer);
let next = 0, checked = 0, mismatches = 0;
const t0 = Date.now();
while (next <= last) {
  bits.fill(0x40c00000, 0, R); // row k = 0: 6.0 in every block
  for (let k = 1; k < 32; k++)
    for (let r = 0; r < R; r++) {
      const b = next <= last ? next++ : 0;
      bits[k * R + r] = negative ? (b | 0x80000000) >>> 0 : b;
    }
  const t = Tensor.fromF32(src, [1, 32, R]);
  const run = (isa) => {
    setIsa(isa);
    const q = Tensor.empty('mxfp4', [1, R, 32]);
    quantizeMxfp4(t, q);
    return { codes: q.read(), scales: q.readScales() };
  };
  const want = run('scalar');
  for (const isa of isas) {
    const got = run(isa);
    for (let i = 0; i < got.codes.length; i++) if (got.codes[i] !== want.codes[i]) mismatches++;
    for (let i = 0; i < got.scales.length; i++) if (got.scales[i] !== want.scales[i]) mismatches++;
  }
  checked = Math.min(next, last + 1);
}
setIsa(cpuInfo().bestIsa);
console.log(JSON.stringify({ negative, values: checked, isas, mismatches, seconds: (Date.now() - t0) / 1e3 }));
process.exit(mismatches ? 1 : 0);
