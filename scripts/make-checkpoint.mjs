#!/usr/bin/env node
// Write a random-weight gpt-oss checkpoint in the exact Hugging Face layout (config.json +
// model.safetensors, or shards + model.safetensors.index.json), streaming.
//
//   node scripts/make-checkpoint.mjs <dir> --preset 20b|120b|tiny [--layers N] [--vocab N] [--hidden N]
//        [--intermediate N] [--experts N] [--seed S] [--shards N] [--shard-naming hf|gpt-oss] [--quiet]
//
// `--preset 20b --layers 4` is the 4-layer cut used by the benchmarks.

import { parseArgs } from 'node:util';
import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PRESETS, writeCheckpoint, totalTensorBytes, checkpointTensors, validateSpec } from './checkpoint-writer.mjs';

const USAGE = `usage: node scripts/make-checkpoint.mjs <dir> --preset 20b|120b|tiny [options]
  --layers N         number of layers (default: the preset's)
  --vocab N          vocabulary size
  --hidden N         hidden size (multiple of 32)
  --intermediate N   expert intermediate size (multiple of 32)
  --experts N        experts per layer
  --experts-per-token N   experts each token is routed to (top-k)
  --sliding-window N      keys a sliding-attention layer sees
  --qk-scale X       multiply the q and k projections' std by X (attention scores by X^2)
  --logit-scale X    multiply the LM head's std by X (logits by X)
  --seed S           PRNG seed (same seed: byte-identical files)
  --shards N         write N shard files + model.safetensors.index.json
  --shard-naming M   hf (model-00001-of-00003) or gpt-oss (model-00000-of-00002, as openai's repos)
  --quiet            no progress output`;

function fail(msg) {
  process.stderr.write(`make-checkpoint: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function int(name, v) {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) fail(`--${name} must be a positive integer, got ${v}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--${name} must be a positive integer, got ${v}`);
  return n;
}

function human(bytes) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = bytes;
  while (x >= 1000 && i < u.length - 1) {
    x /= 1000;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 2)} ${u[i]}`;
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      preset: { type: 'string' },
      layers: { type: 'string' },
      vocab: { type: 'string' },
      hidden: { type: 'string' },
      intermediate: { type: 'string' },
      experts: { type: 'string' },
      'experts-per-token': { type: 'string' },
      'sliding-window': { type: 'string' },
      'qk-scale': { type: 'string' },
      'logit-scale': { type: 'string' },
      seed: { type: 'string' },
      shards: { type: 'string' },
      'shard-naming': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  fail(e.message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
if (positionals.length !== 1) fail('expected exactly one output directory');
const presetName = values.preset ?? fail('--preset is required');
const base = PRESETS[presetName];
if (!base) fail(`unknown preset ${presetName} (20b, 120b, tiny)`);
const naming = values['shard-naming'] ?? 'hf';
if (naming !== 'hf' && naming !== 'gpt-oss') fail(`--shard-naming must be hf or gpt-oss`);

const spec = { ...base };
const set = (key, v) => {
  if (v !== undefined) spec[key] = v;
};
set('numLayers', int('layers', values.layers));
set('vocabSize', int('vocab', values.vocab));
set('hiddenSize', int('hidden', values.hidden));
set('intermediateSize', int('intermediate', values.intermediate));
set('numExperts', int('experts', values.experts));
set('expertsPerToken', int('experts-per-token', values['experts-per-token']));
set('slidingWindow', int('sliding-window', values['sliding-window']));
const positive = (name, v) => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!/^[0-9.eE+-]+$/.test(v) || !Number.isFinite(x) || x <= 0) fail(`--${name} must be a positive number, got ${v}`);
  return x;
};
set('qkScale', positive('qk-scale', values['qk-scale']));
set('logitScale', positive('logit-scale', values['logit-scale']));
if (values.seed !== undefined) spec.seed = /^-?\d+$/.test(values.seed) && Number.isSafeInteger(Number(values.seed)) ? Number(values.seed) : values.seed;
const shards = int('shards', values.shards) ?? 1;
if (spec.expertsPerToken > spec.numExperts && values['experts-per-token'] === undefined) spec.expertsPerToken = spec.numExperts;
try {
  validateSpec(spec);
} catch (e) {
  fail(e.message);
}

const dir = resolve(positionals[0]);
const total = totalTensorBytes(spec);
const tensorCount = checkpointTensors(spec).length;
const quiet = values.quiet;
const log = (s) => {
  if (!quiet) process.stderr.write(s);
};

try {
  const fs = await statfs(resolve(dir, '..'));
  const free = fs.bavail * fs.bsize;
  if (free < total * 1.01) log(`warning: ${human(free)} free on the target file system, the checkpoint needs ${human(total)}\n`);
} catch {
  /* the parent may not exist yet */
}

log(
  `writing ${presetName} checkpoint to ${dir}: vocab ${spec.vocabSize}, hidden ${spec.hiddenSize}, intermediate ${spec.intermediateSize}, ` +
    `${spec.numLayers} layers, ${spec.numExperts} experts top-${spec.expertsPerToken}, seed ${spec.seed}, ` +
    `${tensorCount} tensors, ${human(total)} of tensor data${shards > 1 ? `, ${shards} shards` : ''}\n`,
);

const t0 = performance.now();
let lastPrint = 0;
const isTty = process.stderr.isTTY;
const result = await writeCheckpoint(dir, spec, {
  shards,
  shardNaming: naming,
  onProgress: (p) => {
    const now = performance.now();
    if (quiet || (now - lastPrint < (isTty ? 200 : 2000) && p.bytesWritten < p.totalBytes)) return;
    lastPrint = now;
    const secs = (now - t0) / 1000;
    const rate = secs > 0 ? p.bytesWritten / secs : 0;
    const pct = ((100 * p.bytesWritten) / p.totalBytes).toFixed(1).padStart(5);
    const line = `[${pct}%] ${human(p.bytesWritten)} / ${human(p.totalBytes)}  ${human(rate)}/s  ${p.tensorIndex + 1}/${p.tensorCount} ${p.tensor}`;
    process.stderr.write(isTty ? `\r\x1b[K${line}` : `${line}\n`);
  },
});
if (isTty && !quiet) process.stderr.write('\n');
const secs = (performance.now() - t0) / 1000;
for (const f of result.files) log(`  ${f}\n`);
if (result.indexPath) log(`  ${result.indexPath}\n`);
log(`  ${result.configPath}\n`);
process.stdout.write(
  `wrote ${result.fileBytes} bytes (${human(result.fileBytes)}; tensor data ${result.totalBytes} bytes) in ${result.files.length} file(s), ` +
    `${result.tensorCount} tensors, ${secs.toFixed(1)} s (${human(result.fileBytes / Math.max(secs, 1e-9))}/s) -> ${dir}\n`,
);
