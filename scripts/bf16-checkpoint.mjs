#!/usr/bin/env node
// A gpt-oss checkpoint with MXFP4 experts -> the fine-tuned layout (what transformers saves after loading it
// with Mxfp4Config(dequantize=True), e.g. at the end of a TRL fine-tune): experts in bf16 as
// `mlp.experts.gate_up_proj` [E, H, 2I] and `down_proj` [E, I, H] (the transpose of the blocks' [E, out, in],
// gate/up rows still interleaved), biases and every other tensor unchanged, config.json without
// quantization_config. Streaming: a shard a layer (+ one for the rest) and model.safetensors.index.json,
// experts converted a few at a time by the addon's native ops (mxfp4Dequantize on the thread pool, then
// transposeExperts), so memory stays ~0.5 GB and the 20b's 40.6 GB are written at disk speed.
// The values are exactly E2M1 code x 2^(scale - 127) in bf16 (make-bf16-fixture.py's without --perturb), so
// quantizing them back at load (loadModel's default experts: 'mxfp4') returns the source's blocks bit for bit.
// For small perturbed checkpoints see scripts/dequantize-checkpoint.mjs --perturb.
//   node scripts/bf16-checkpoint.mjs <mxfp4-dir> <out-dir> [--layers N] [--quiet]
// --layers N: only the first N layers (a cut; config.json says N). Needs the addon (npm run build / the GPU
// host's build-gpu: GPT_OSS_NODE_BINARY) and dist/ (npx tsc).
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { transposeExperts, ops } from '../dist/ops.js';
import { Tensor } from '../dist/tensor.js';
import { readAt, readSafetensorsHeader, safetensorsHeader } from './checkpoint-writer.mjs';

const readFrom = (fd, buf, pos) => readAt(fd, buf, pos, 'bf16-checkpoint');

function writeAt(fd, buf, pos) {
  let put = 0;
  while (put < buf.length) put += writeSync(fd, buf, put, buf.length - put, pos + put);
}

/**
 * Writes the bf16-experts form of the checkpoint in `src` (one model.safetensors or shards with an index)
 * into `out`. Returns { tensors, bytes, shards, seconds }.
 */
export function bf16Checkpoint(src, out, { layers, log = () => {} } = {}) {
  const t0 = performance.now();
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(out)) if (/^model.*\.safetensors(\.index\.json)?$/.test(f)) unlinkSync(join(out, f));
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  const nLayers = Math.min(layers ?? config.num_hidden_layers, config.num_hidden_layers);
  delete config.quantization_config;
  config.torch_dtype = 'bfloat16';
  config.num_hidden_layers = nLayers;
  if (Array.isArray(config.layer_types)) config.layer_types = config.layer_types.slice(0, nLayers);
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of readdirSync(src))
    if (f.endsWith('.json') && f !== 'config.json' && f !== 'model.safetensors.index.json') copyFileSync(join(src, f), join(out, f));

  const indexPath = join(src, 'model.safetensors.index.json');
  const files = existsSync(indexPath)
    ? [...new Set(Object.values(JSON.parse(readFileSync(indexPath, 'utf8')).weight_map))].sort()
    : ['model.safetensors'];
  const where = new Map(); // name -> { fd, start, entry }
  const fds = [];
  for (const f of files) {
    const h = readSafetensorsHeader(join(src, f));
    fds.push(h.fd);
    for (const [name, entry] of Object.entries(h.header)) if (name !== '__metadata__') where.set(name, { fd: h.fd, start: h.start, entry });
  }
  // Shards: layer l's tensors, then everything not in a layer; tensors of layers >= nLayers are dropped.
  const groups = new Map();
  for (const name of where.keys()) {
    if (name.endsWith('_scales')) continue;
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= nLayers) continue;
    const key = m ? Number(m[1]) : nLayers;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(name);
  }
  const keys = [...groups.keys()].sort((a, b) => a - b);
  // The bf16 staging tensors, kept per shape (fresh 128 MB allocations a step cost more in page faults than
  // the conversion itself).
  const staging = new Map();
  const scratch = ([n, R, C]) => {
    const key = `${n}x${R}x${C}`;
    if (!staging.has(key)) staging.set(key, { rows: Tensor.empty('bf16', [n, R, C]), cols: Tensor.empty('bf16', [n, C, R]) });
    return staging.get(key);
  };
  const weightMap = {};
  let total = 0;
  let count = 0;
  keys.forEach((key, i) => {
    const fname = `model-${String(i + 1).padStart(5, '0')}-of-${String(keys.length).padStart(5, '0')}.safetensors`;
    const tensors = groups.get(key).map((name) => {
      const { entry } = where.get(name);
      const nbytes = entry.data_offsets[1] - entry.data_offsets[0];
      if (!name.endsWith('_blocks')) return { name, dtype: entry.dtype, shape: entry.shape, nbytes, src: name };
      const base = name.slice(0, -'_blocks'.length);
      const [E, R, G] = entry.shape;
      return { name: base, dtype: 'BF16', shape: [E, G * 32, R], nbytes: E * R * G * 32 * 2, src: name, experts: { E, R, G } };
    });
    const { header, entries } = safetensorsHeader(tensors, { format: 'pt' });
    const fd = openSync(join(out, fname), 'w');
    try {
      writeAt(fd, header, 0);
      for (const t of entries) {
        const pos = header.length + t.begin;
        const s = where.get(t.src);
        const [b0, b1] = s.entry.data_offsets;
        if (!t.experts) {
          writeAt(fd, readFrom(s.fd, Buffer.allocUnsafe(b1 - b0), s.start + b0), pos);
        } else {
          const { E, R, G } = t.experts;
          const sc = where.get(t.src.slice(0, -'_blocks'.length) + '_scales');
          const C = G * 32;
          // a few experts at a time: ~128 MB of bf16 a step
          const step = Math.max(1, Math.min(E, Math.floor((128 << 20) / (R * C * 2))));
          for (let e0 = 0; e0 < E; e0 += step) {
            const n = Math.min(step, E - e0);
            const blocks = readFrom(s.fd, Buffer.allocUnsafe(n * R * G * 16), s.start + b0 + e0 * R * G * 16);
            const scales = readFrom(sc.fd, Buffer.allocUnsafe(n * R * G), sc.start + sc.entry.data_offsets[0] + e0 * R * G);
            const packed = Tensor.fromMxfp4(blocks, scales, [n, R, C]);
            const { rows, cols } = scratch([n, R, C]);
            ops.mxfp4Dequantize(packed, rows);
            transposeExperts(rows, cols);
            const bits = cols.read();
            writeAt(fd, Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength), pos + e0 * C * R * 2);
            packed.dispose();
          }
        }
        weightMap[t.name] = fname;
        total += t.nbytes;
        count++;
      }
    } finally {
      closeSync(fd);
    }
    log(`${fname}: ${entries.length} tensors, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  });
  for (const fd of fds) closeSync(fd);
  for (const { rows, cols } of staging.values()) {
    rows.dispose();
    cols.dispose();
  }
  writeFileSync(join(out, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  return { tensors: count, bytes: total, shards: keys.length, seconds: (performance.now() - t0) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const quiet = args.includes('--quiet');
  if (quiet) args.splice(args.indexOf('--quiet'), 1);
  const li = args.indexOf('--layers');
  const layers = li >= 0 ? Number(args.splice(li, 2)[1]) : undefined;
  if (args.length !== 2 || (layers !== undefined && !(Number.isInteger(layers) && layers > 0))) {
    console.error('usage: node scripts/bf16-checkpoint.mjs <mxfp4-dir> <out-dir> [--layers N] [--quiet]');
    process.exit(2);
  }
  const r = bf16Checkpoint(args[0], args[1], { layers, log: quiet ? () => {} : (s) => process.stderr.write(s) });
  console.log(`bf16-checkpoint: ${r.tensors} tensors, ${(r.bytes / 1e9).toFixed(2)} GB in ${r.shards} shards, ` +
    `${r.seconds.toFixed(1)} s (${(r.bytes / 1e9 / r.seconds).toFixed(2)} GB/s) -> ${args[1]}`);
}
