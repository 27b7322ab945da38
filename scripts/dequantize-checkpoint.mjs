#!/usr/bin/env node
// A Hugging Face gpt-oss checkpoint with MXFP4 experts -> the layout transformers saves after
// loading it with Mxfp4Config(dequantize=True) (what a TRL fine-tune writes): experts in bf16 as
// `mlp.experts.gate_up_proj` [E, H, 2I] and `down_proj` [E, I, H] (the transpose of the blocks'
// [E, out, in], gate/up still interleaved), biases unchanged, no quantization_config in config.json.
// This project's stand-in until a fixture written by transformers itself exists
// (scripts/make-bf16-fixture.py on a host with torch).
//   node scripts/dequantize-checkpoint.mjs <mxfp4-dir> <out-dir> [--perturb S]
// --perturb S: add seeded noise of S times each block's scale to the experts (weights a fine-tune
// moved off the MXFP4 grid), so quantizing them again at load is not exact.
import { mkdirSync, readFileSync, closeSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readAt, readSafetensorsHeader, safetensorsHeader, Xoshiro128 } from './checkpoint-writer.mjs';

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x) {
  f32[0] = x;
  const u = u32[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function read(fd, pos, len) {
  return readAt(fd, Buffer.alloc(len), pos, 'dequantize-checkpoint');
}

/** Writes the dequantized (bf16 experts) form of the single-file checkpoint `src` into `out`. */
export async function dequantizeCheckpoint(src, out, { perturb = 0, seed = 1 } = {}) {
  mkdirSync(out, { recursive: true });
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  delete config.quantization_config;
  config.torch_dtype = 'bfloat16';
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const { fd, start, header } = readSafetensorsHeader(join(src, 'model.safetensors'));
  const tensors = [];
  const data = new Map();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__' || name.endsWith('_scales')) continue;
    if (name.endsWith('_blocks')) {
      const base = name.slice(0, -'_blocks'.length);
      const s = header[base + '_scales'];
      const [E, R, G] = s.shape;
      const C = G * 32;
      const blocks = read(fd, start + e.data_offsets[0], e.data_offsets[1] - e.data_offsets[0]);
      const scales = read(fd, start + s.data_offsets[0], s.data_offsets[1] - s.data_offsets[0]);
      const rng = new Xoshiro128(seed, base);
      const outBuf = new Uint16Array(E * C * R); // [E, C, R]
      for (let ex = 0; ex < E; ex++)
        for (let r = 0; r < R; r++)
          for (let g = 0; g < G; g++) {
            const blk = (ex * R + r) * G + g;
            const scale = 2 ** (scales[blk] - 127);
            for (let k = 0; k < 32; k++) {
              const byte = blocks[blk * 16 + (k >> 1)];
              let v = E2M1[k & 1 ? byte >> 4 : byte & 15] * scale;
              if (perturb) v += (rng.nextFloat() * 2 - 1) * perturb * scale;
              outBuf[(ex * C + g * 32 + k) * R + r] = toBf16(v);
            }
          }
      tensors.push({ name: base, dtype: 'BF16', shape: [E, C, R], nbytes: outBuf.byteLength, init: { kind: 'bytes' } });
      data.set(base, Buffer.from(outBuf.buffer));
    } else {
      const bytes = read(fd, start + e.data_offsets[0], e.data_offsets[1] - e.data_offsets[0]);
      tensors.push({ name, dtype: e.dtype, shape: e.shape, nbytes: bytes.length, init: { kind: 'bytes' } });
      data.set(name, bytes);
    }
  }
  closeSync(fd);
  const { header: h, entries } = safetensorsHeader(tensors, { format: 'pt' });
  const fh = await open(join(out, 'model.safetensors'), 'w');
  try {
    await fh.write(h, 0, h.length, 0);
    for (const e of entries) {
      const b = data.get(e.name);
      await fh.write(b, 0, b.length, h.length + e.begin);
    }
  } finally {
    await fh.close();
  }
  return { tensors: entries.length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--perturb');
  const perturb = i >= 0 ? Number(args.splice(i, 2)[1]) : 0;
  if (args.length !== 2) {
    console.error('usage: node scripts/dequantize-checkpoint.mjs <mxfp4-dir> <out-dir> [--perturb S]');
    process.exit(2);
  }
  const r = await dequantizeCheckpoint(args[0], args[1], { perturb });
  console.log(`${args[1]}: ${r.tensors} tensors, experts in bf16 (transformers' dequantized layout)`);
}
