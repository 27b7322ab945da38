// Random gpt-oss checkpoints in the exact Hugging Face layout, for any config, plus damaged ones for
// loader tests.
//
// The streaming writer lives in scripts/checkpoint-writer.mjs (plain JS: the make-checkpoint CLI runs
// it without TypeScript); this module re-exports it with types and adds corruptCheckpoint().
//
//   import { TINY, GPT_OSS_20B, writeCheckpoint, corruptCheckpoint } from './helpers/checkpoint.js';
//   await writeCheckpoint(dir, TINY);                                   // config.json + model.safetensors
//   await writeCheckpoint(dir, { ...GPT_OSS_20B, numLayers: 4 }, { shards: 3 });
//   const bad = await corruptCheckpoint(dir, 'wrong-shape');            // { dir, file, tensorName, description }

import { readFile, writeFile, truncate as truncateFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeSafetensorsHeader, writeCheckpoint, TINY } from '../../scripts/checkpoint-writer.mjs';
import type { CheckpointSpec as WriterCheckpointSpec } from '../../scripts/checkpoint-writer.mjs';

export {
  TINY,
  GPT_OSS_20B,
  GPT_OSS_120B,
  PRESETS,
  writeCheckpoint,
  checkpointTensors,
  totalTensorBytes,
  configJson,
  configObject,
  layerTypes,
  safetensorsHeader,
  safetensorsOrder,
  tensorData,
  planShards,
  shardFileName,
  validateSpec,
  defaultScaleRanges,
  DTYPE_SIZE,
  pyJsonDumps,
  pyFloatRepr,
} from '../../scripts/checkpoint-writer.mjs';
export type {
  SafetensorsDtype,
  RopeYarnSpec,
  TensorInit,
  TensorInfo,
  PlacedTensor,
  WriteProgress,
  WriteCheckpointOptions,
  WriteCheckpointResult,
} from '../../scripts/checkpoint-writer.mjs';

export type CheckpointSpec = WriterCheckpointSpec;

/** A random model with the whole o200k_harmony vocabulary (201088) and a tiny body: Harmony text and
 *  conversations run through it in tests (generate, chat, CLI). */
export const FULL_VOCAB_TINY: CheckpointSpec = {
  ...TINY,
  vocabSize: 201088,
  hiddenSize: 64,
  intermediateSize: 64,
  numLayers: 2,
  numExperts: 4,
  expertsPerToken: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 32,
  slidingWindow: 16,
  seed: 7,
};

// ---------------------------------------------------------------------------------------------
// A small safetensors header reader/writer for the helpers (tests should use their own reader)
// ---------------------------------------------------------------------------------------------

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface ParsedSafetensors {
  /** N, the JSON header length (excluding the 8-byte length prefix) */
  headerLength: number;
  /** header JSON object, keys in file order (incl. __metadata__) */
  header: Record<string, unknown>;
  /** tensor entries, keys in file order */
  tensors: Record<string, HeaderEntry>;
  metadata?: Record<string, string>;
  /** the data section (bytes after the header) */
  data: Buffer;
}

/** Reads a whole (small) safetensors file. Throws on a malformed file. */
export async function readSafetensors(file: string): Promise<ParsedSafetensors> {
  const buf = await readFile(file);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`${file}: header length ${n} past end of file (${buf.length} bytes)`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const tensors: Record<string, HeaderEntry> = {};
  for (const [k, v] of Object.entries(header)) if (k !== '__metadata__') tensors[k] = v as HeaderEntry;
  return { headerLength: n, header, tensors, metadata: header.__metadata__ as Record<string, string> | undefined, data: buf.subarray(8 + n) };
}

async function rewrite(file: string, header: Record<string, unknown>, data: Buffer): Promise<void> {
  await writeFile(file, Buffer.concat([encodeSafetensorsHeader(header), data]));
}

/** Tensor names in data order (by begin offset). */
function dataOrder(tensors: Record<string, HeaderEntry>): string[] {
  return Object.keys(tensors).sort((a, b) => tensors[a].data_offsets[0] - tensors[b].data_offsets[0]);
}

// ---------------------------------------------------------------------------------------------
// Corrupt checkpoints
// ---------------------------------------------------------------------------------------------

export const CORRUPT_KINDS = [
  'missing-tensor',
  'wrong-dtype',
  'wrong-shape',
  'header-length-past-eof',
  'malformed-header-json',
  'offsets-out-of-range',
  'offsets-overlap',
  'truncated-file',
  'config-missing-field',
] as const;
export type CorruptKind = (typeof CORRUPT_KINDS)[number];

export interface CorruptResult {
  kind: CorruptKind;
  dir: string;
  /** the damaged file (model.safetensors, or config.json for 'config-missing-field') */
  file: string;
  /** the tensor the damage is about (absent for whole-file damage and config damage) */
  tensorName?: string;
  /** for 'offsets-overlap': the tensor whose bytes the moved tensor now overlaps */
  otherTensorName?: string;
  /** for 'config-missing-field': the removed config.json key */
  field?: string;
  description: string;
}

export interface CorruptOptions {
  /** checkpoint to damage (default TINY); must be unsharded-sized, it is rewritten in memory */
  spec?: CheckpointSpec;
  /** tensor to damage instead of the kind's default (missing-tensor, wrong-dtype, wrong-shape, offsets-out-of-range, offsets-overlap) */
  tensorName?: string;
  /** config.json key to drop for 'config-missing-field' (default 'hidden_size') */
  field?: string;
}

const DEFAULT_TENSOR: Partial<Record<CorruptKind, string>> = {
  'missing-tensor': 'model.layers.1.self_attn.k_proj.weight',
  'wrong-dtype': 'model.layers.0.self_attn.q_proj.weight',
  'wrong-shape': 'model.layers.0.self_attn.o_proj.weight',
  'offsets-overlap': 'model.layers.0.self_attn.k_proj.weight',
};

/**
 * Writes a (TINY by default) checkpoint into dir, then damages it as `kind` says:
 * - 'missing-tensor': one tensor dropped from the header, the data repacked (a valid file that lacks it)
 * - 'wrong-dtype': a BF16 weight relabelled F16 (same byte size, so only a dtype check catches it)
 * - 'wrong-shape': o_proj.weight [hidden, heads*head_dim] relabelled transposed (same element count)
 * - 'header-length-past-eof': the 8-byte header length says more bytes than the file has
 * - 'malformed-header-json': the header JSON's final '}' replaced by a space (same length)
 * - 'offsets-out-of-range': the last tensor's data_offsets shifted 16 bytes past the end of the data
 * - 'offsets-overlap': a tensor's data_offsets moved 2 bytes back, into the previous tensor's bytes
 * - 'truncated-file': the file cut in the middle of the data; tensorName is the tensor spanning the cut
 * - 'config-missing-field': a key (default hidden_size) removed from config.json
 */
export async function corruptCheckpoint(dir: string, kind: CorruptKind, opts: CorruptOptions = {}): Promise<CorruptResult> {
  if (!(CORRUPT_KINDS as readonly string[]).includes(kind)) throw new Error(`unknown corrupt kind ${kind}`);
  const spec = opts.spec ?? TINY;
  await writeCheckpoint(dir, spec);
  const file = join(dir, 'model.safetensors');
  const st = await readSafetensors(file);
  const order = dataOrder(st.tensors);
  const pick = (fallback: string): string => {
    const name = opts.tensorName ?? DEFAULT_TENSOR[kind] ?? fallback;
    if (!st.tensors[name]) throw new Error(`corruptCheckpoint: no tensor ${name} in ${file}`);
    return name;
  };
  // What each kind reports: the damage to `file` (model.safetensors unless `about` names another),
  // the tensor(s) or field it is about.
  const damaged = (description: string, about: Omit<CorruptResult, 'kind' | 'dir' | 'description'> = { file }): CorruptResult => ({
    kind,
    dir,
    ...about,
    description,
  });

  switch (kind) {
    case 'missing-tensor': {
      const name = pick(order[0]);
      const header: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      let off = 0;
      if (st.metadata) header.__metadata__ = st.metadata;
      for (const k of order) {
        if (k === name) continue;
        const e = st.tensors[k];
        const [a, b] = e.data_offsets;
        chunks.push(st.data.subarray(a, b));
        header[k] = { ...e, data_offsets: [off, off + (b - a)] };
        off += b - a;
      }
      await rewrite(file, header, Buffer.concat(chunks));
      return damaged(`${file}: tensor ${name} removed (header entry and data)`, { file, tensorName: name });
    }
    case 'wrong-dtype': {
      const name = pick(order[0]);
      const e = st.tensors[name];
      const to = e.dtype === 'F16' ? 'BF16' : e.dtype === 'U8' ? 'I8' : 'F16';
      const from = e.dtype;
      e.dtype = to;
      await rewrite(file, st.header, st.data);
      return damaged(`${file}: tensor ${name} has dtype ${to} instead of ${from} (same byte size)`, { file, tensorName: name });
    }
    case 'wrong-shape': {
      const name = pick(order[0]);
      const e = st.tensors[name];
      const from = [...e.shape];
      e.shape = from.length >= 2 ? [...from].reverse() : [from[0] / 2, 2];
      if (e.shape.every((d, i) => d === from[i])) e.shape = [...from.slice(0, -1), from[from.length - 1] / 2, 2];
      await rewrite(file, st.header, st.data);
      return damaged(
        `${file}: tensor ${name} has shape [${e.shape.join(',')}] instead of [${from.join(',')}] (same element count)`,
        { file, tensorName: name },
      );
    }
    case 'header-length-past-eof': {
      const buf = await readFile(file);
      const claimed = buf.length; // 8 + claimed > file size
      buf.writeBigUInt64LE(BigInt(claimed), 0);
      await writeFile(file, buf);
      return damaged(`${file}: header length field says ${claimed} bytes but the file has ${buf.length} bytes in all`);
    }
    case 'malformed-header-json': {
      const buf = await readFile(file);
      const headerText = buf.subarray(8, 8 + st.headerLength);
      const last = headerText.lastIndexOf(0x7d); // final '}'
      buf[8 + last] = 0x20;
      await writeFile(file, buf);
      return damaged(`${file}: header JSON is not valid JSON (its closing brace at header byte ${last} replaced by a space)`);
    }
    case 'offsets-out-of-range': {
      const name = opts.tensorName ?? order[order.length - 1];
      const e = st.tensors[name];
      if (!e) throw new Error(`corruptCheckpoint: no tensor ${name} in ${file}`);
      const [a, b] = e.data_offsets;
      e.data_offsets = [a + 16, b + 16];
      await rewrite(file, st.header, st.data);
      return damaged(
        `${file}: tensor ${name} data_offsets [${a + 16},${b + 16}] end past the data section (${st.data.length} bytes)`,
        { file, tensorName: name },
      );
    }
    case 'offsets-overlap': {
      const name = pick(order[1]);
      const i = order.indexOf(name);
      if (i === 0) throw new Error(`corruptCheckpoint: ${name} is the first tensor, nothing to overlap`);
      const other = order[i - 1];
      const e = st.tensors[name];
      const [a, b] = e.data_offsets;
      e.data_offsets = [a - 2, b - 2];
      await rewrite(file, st.header, st.data);
      return damaged(
        `${file}: tensor ${name} data_offsets [${a - 2},${b - 2}] overlap tensor ${other} [${st.tensors[other].data_offsets.join(',')}]`,
        { file, tensorName: name, otherTensorName: other },
      );
    }
    case 'truncated-file': {
      const cut = Math.floor(st.data.length / 2);
      const size = 8 + st.headerLength + cut;
      const name = order.find((k) => st.tensors[k].data_offsets[1] > cut)!;
      await truncateFile(file, size);
      return damaged(
        `${file}: truncated to ${size} bytes (header says ${8 + st.headerLength + st.data.length}); tensor ${name} [${st.tensors[name].data_offsets.join(',')}] runs past the end`,
        { file, tensorName: name },
      );
    }
    case 'config-missing-field': {
      const field = opts.field ?? 'hidden_size';
      const cfgFile = join(dir, 'config.json');
      const text = await readFile(cfgFile, 'utf8');
      const cfg = JSON.parse(text) as Record<string, unknown>;
      if (!(field in cfg)) throw new Error(`corruptCheckpoint: config.json has no ${field}`);
      // drop the key line by line to keep the rest byte-identical (Python float formatting, order)
      const lines = text.split('\n');
      const start = lines.findIndex((l) => l.startsWith(`  ${JSON.stringify(field)}: `));
      let end = start;
      const first = lines[start].slice(`  ${JSON.stringify(field)}: `.length);
      if (first.startsWith('[') || first.startsWith('{')) {
        if (!/^[[{][\]}],?$/.test(first)) while (!/^  [\]}],?$/.test(lines[end])) end++;
      }
      const hadComma = lines[end].endsWith(',');
      lines.splice(start, end - start + 1);
      if (!hadComma) lines[start - 1] = lines[start - 1].replace(/,$/, '');
      const out = lines.join('\n');
      JSON.parse(out); // still valid JSON
      await writeFile(cfgFile, out);
      return damaged(`${cfgFile}: required field ${field} missing`, { file: cfgFile, field });
    }
  }
  throw new Error(`unhandled corrupt kind ${kind as string}`);
}
