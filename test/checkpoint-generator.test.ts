// The random gpt-oss checkpoint generator (test/helpers/checkpoint.ts, scripts/checkpoint-writer.mjs)
// checked against the reference fixture test/fixtures/tiny-a with an independent safetensors reader.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, readFile, stat, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  TINY,
  GPT_OSS_20B,
  GPT_OSS_120B,
  writeCheckpoint,
  corruptCheckpoint,
  CORRUPT_KINDS,
  checkpointTensors,
  totalTensorBytes,
  configJson,
  type CheckpointSpec,
} from './helpers/checkpoint.js';
import { rng, randomBytes } from './helpers/rng.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'tiny-a');
const ROOT = join(import.meta.dirname, '..');

// ---- an independent minimal safetensors reader ------------------------------------------------

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}
interface Parsed {
  size: number;
  n: number;
  headerJson: string;
  keys: string[]; // file order, incl. __metadata__
  tensors: Map<string, Entry>;
  metadata: unknown;
}
const BYTES: Record<string, number> = { BF16: 2, F16: 2, F32: 4, U8: 1, I8: 1 };

function parse(buf: Buffer): Parsed {
  const n = Number(buf.readBigUInt64LE(0));
  const headerJson = buf.subarray(8, 8 + n).toString('utf8');
  const obj = JSON.parse(headerJson) as Record<string, unknown>;
  const tensors = new Map<string, Entry>();
  for (const [k, v] of Object.entries(obj)) if (k !== '__metadata__') tensors.set(k, v as Entry);
  return { size: buf.length, n, headerJson, keys: Object.keys(obj), tensors, metadata: obj.__metadata__ };
}
const parseFile = (file: string) => parse(readFileSync(file));

/** Offsets contiguous from 0, in key order, sizes matching dtype*shape, ending at EOF. */
function checkWellFormed(p: Parsed) {
  expect(p.n % 8).toBe(0);
  expect(p.headerJson.trimEnd().length).toBeGreaterThan(p.n - 8); // at most 7 pad spaces
  expect(p.headerJson.slice(p.headerJson.trimEnd().length)).toMatch(/^ *$/);
  let off = 0;
  for (const [name, e] of p.tensors) {
    const [a, b] = e.data_offsets;
    expect(a, name).toBe(off);
    expect(b - a, name).toBe(e.shape.reduce((x, y) => x * y, 1) * BYTES[e.dtype]);
    off = b;
  }
  expect(p.size).toBe(8 + p.n + off);
}

function layoutOf(p: Parsed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, e] of p.tensors) out[k] = `${e.dtype} [${e.shape.join(',')}]`;
  return out;
}

function tensorBytes(buf: Buffer, p: Parsed, name: string): Buffer {
  const e = p.tensors.get(name)!;
  const base = 8 + p.n;
  return buf.subarray(base + e.data_offsets[0], base + e.data_offsets[1]);
}
function tensorValues(buf: Buffer, p: Parsed, name: string): number[] {
  const e = p.tensors.get(name)!;
  const raw = tensorBytes(buf, p, name);
  if (e.dtype === 'U8') return [...raw];
  const u32 = new Uint32Array(raw.length / 2);
  for (let i = 0; i < u32.length; i++) u32[i] = raw.readUInt16LE(2 * i) << 16;
  return [...new Float32Array(u32.buffer)];
}
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const std = (x: number[]) => {
  const m = mean(x);
  return Math.sqrt(x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length);
};

// ---------------------------------------------------------------------------------------------

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gpt-oss-ckpt-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('TINY checkpoint vs test/fixtures/tiny-a', () => {
  let dir: string;
  let buf: Buffer;
  let got: Parsed;
  let ref: Parsed;
  beforeAll(async () => {
    dir = join(tmp, 'tiny');
    await writeCheckpoint(dir, TINY);
    buf = await readFile(join(dir, 'model.safetensors'));
    got = parse(buf);
    ref = parseFile(join(FIXTURE, 'model.safetensors'));
  });

  it('has exactly the fixture tensor names, dtypes and shapes', () => {
    expect(layoutOf(got)).toEqual(layoutOf(ref));
    expect(got.tensors.size).toBe(79);
    expect(got.metadata).toEqual({ format: 'pt' });
  });

  it('follows the safetensors writer conventions of the fixture (key order, offsets, padding)', () => {
    checkWellFormed(ref);
    checkWellFormed(got);
    expect(got.keys).toEqual(ref.keys); // __metadata__ first, then BF16 by name, then U8 by name
    // same names + shapes + conventions => the header bytes are identical to the fixture's
    expect(got.headerJson).toBe(ref.headerJson);
    expect(got.size).toBe(7099272);
    expect(got.size).toBe(ref.size);
  });

  it('writes config.json byte-identical to the fixture', async () => {
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(await readFile(join(FIXTURE, 'config.json'), 'utf8'));
  });

  it('draws sensible values (bf16 ~ 1/sqrt(fan_in), norms ~ 1, E8M0 scales as tiny-a, all nibbles)', () => {
    const q = tensorValues(buf, got, 'model.layers.0.self_attn.q_proj.weight');
    expect(Math.abs(mean(q))).toBeLessThan(0.005);
    expect(std(q)).toBeGreaterThan(0.055);
    expect(std(q)).toBeLessThan(0.07);
    const norm = tensorValues(buf, got, 'model.layers.2.post_attention_layernorm.weight');
    expect(Math.abs(mean(norm) - 1)).toBeLessThan(0.03);
    expect(std(tensorValues(buf, got, 'model.embed_tokens.weight'))).toBeGreaterThan(0.9);
    for (const v of [...tensorValues(buf, got, 'lm_head.weight'), ...tensorValues(buf, got, 'model.layers.3.self_attn.sinks')]) expect(Number.isFinite(v)).toBe(true);
    expect(new Set(tensorValues(buf, got, 'model.layers.1.mlp.experts.gate_up_proj_scales'))).toEqual(new Set([122, 123, 124]));
    expect(new Set(tensorValues(buf, got, 'model.layers.1.mlp.experts.down_proj_scales'))).toEqual(new Set([120, 121, 122]));
    const blocks = tensorValues(buf, got, 'model.layers.1.mlp.experts.down_proj_blocks');
    const lo = new Set(blocks.map((b) => b & 15));
    const hi = new Set(blocks.map((b) => b >> 4));
    expect(lo.size).toBe(16);
    expect(hi.size).toBe(16);
    // tensors are not copies of each other
    expect(tensorBytes(buf, got, 'model.layers.0.self_attn.k_proj.weight').equals(tensorBytes(buf, got, 'model.layers.0.self_attn.v_proj.weight'))).toBe(false);
  });

  it('is deterministic for a seed, different for another seed', async () => {
    const again = join(tmp, 'tiny-again');
    await writeCheckpoint(again, TINY, { chunkBytes: 8192 }); // chunking must not change the stream
    expect((await readFile(join(again, 'model.safetensors'))).equals(buf)).toBe(true);
    const other = join(tmp, 'tiny-other');
    await writeCheckpoint(other, { ...TINY, seed: 7 });
    const b2 = await readFile(join(other, 'model.safetensors'));
    expect(b2.length).toBe(buf.length);
    expect(b2.subarray(0, 8 + got.n).equals(buf.subarray(0, 8 + got.n))).toBe(true); // same header
    expect(b2.equals(buf)).toBe(false);
    // every tensor differs
    const p2 = parse(b2);
    for (const name of got.tensors.keys()) expect(tensorBytes(b2, p2, name).equals(tensorBytes(buf, got, name)), name).toBe(false);
  });
});

describe('sharded checkpoints', () => {
  it('writes model-0000i-of-0000n files and an index.json mapping every tensor', async () => {
    const dir = join(tmp, 'sharded');
    const res = await writeCheckpoint(dir, TINY, { shards: 3 });
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([
      'config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(res.files.map((f) => f.slice(dir.length + 1))).toEqual(files.slice(1, 4));
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index).sort()).toEqual(['metadata', 'weight_map']);
    const ref = parseFile(join(FIXTURE, 'model.safetensors'));
    expect(Object.keys(index.weight_map).sort()).toEqual([...ref.tensors.keys()].sort());
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort()); // sort_keys like HF

    // each shard: well formed, holds exactly the tensors the index says, same bytes as the unsharded file
    const single = join(tmp, 'sharded-single');
    await writeCheckpoint(single, TINY);
    const sBuf = await readFile(join(single, 'model.safetensors'));
    const sP = parse(sBuf);
    let total = 0;
    const seen = new Set<string>();
    for (const f of files.slice(1, 4)) {
      const b = await readFile(join(dir, f));
      const p = parse(b);
      checkWellFormed(p);
      expect(p.tensors.size).toBeGreaterThan(0);
      for (const [name, e] of p.tensors) {
        expect(index.weight_map[name], name).toBe(f);
        expect(seen.has(name)).toBe(false);
        seen.add(name);
        total += e.data_offsets[1] - e.data_offsets[0];
        expect(tensorBytes(b, p, name).equals(tensorBytes(sBuf, sP, name)), name).toBe(true);
      }
    }
    expect(seen.size).toBe(79);
    expect(index.metadata.total_size).toBe(total);
    expect(total).toBe(totalTensorBytes(TINY));
  });

  it("supports openai's shard naming (model-00000-of-00002 for 3 files)", async () => {
    const dir = join(tmp, 'sharded-gptoss');
    await writeCheckpoint(dir, TINY, { shards: 3, shardNaming: 'gpt-oss' });
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect([...new Set(Object.values(index.weight_map))].sort()).toEqual([
      'model-00000-of-00002.safetensors',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
  });

  it('removes a stale index.json when rewriting a single-file checkpoint', async () => {
    const dir = join(tmp, 'restale');
    await writeCheckpoint(dir, TINY, { shards: 2 });
    await writeCheckpoint(dir, TINY);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
  });
});

describe('other shapes', () => {
  it('gpt-oss-20b / 120b layouts match the real checkpoints (total_size, config.json)', () => {
    expect(totalTensorBytes(GPT_OSS_20B)).toBe(13761264768); // openai/gpt-oss-20b index.json total_size
    const t20 = Object.fromEntries(checkpointTensors(GPT_OSS_20B).map((t) => [t.name, t]));
    expect(Object.keys(t20).length).toBe(3 + 24 * 19);
    expect(t20['model.embed_tokens.weight'].shape).toEqual([201088, 2880]);
    expect(t20['model.layers.23.mlp.experts.gate_up_proj_blocks'].shape).toEqual([32, 5760, 90, 16]);
    expect(t20['model.layers.23.mlp.experts.down_proj_scales'].shape).toEqual([32, 2880, 90]);
    expect(t20['model.layers.0.self_attn.q_proj.weight'].shape).toEqual([4096, 2880]);
    expect(t20['model.layers.0.self_attn.k_proj.weight'].shape).toEqual([512, 2880]);
    expect(t20['model.layers.0.self_attn.o_proj.weight'].shape).toEqual([2880, 4096]);
    expect(t20['model.layers.0.self_attn.sinks'].shape).toEqual([64]);
    const cfg = JSON.parse(configJson(GPT_OSS_20B));
    expect(cfg).toMatchObject({
      vocab_size: 201088,
      hidden_size: 2880,
      intermediate_size: 2880,
      num_hidden_layers: 24,
      num_local_experts: 32,
      experts_per_token: 4,
      num_experts_per_tok: 4,
      num_attention_heads: 64,
      num_key_value_heads: 8,
      head_dim: 64,
      sliding_window: 128,
      rope_theta: 150000,
      rms_norm_eps: 1e-5,
      swiglu_limit: 7,
      max_position_embeddings: 131072,
      initial_context_length: 4096,
      eos_token_id: 200002,
      pad_token_id: 199999,
      rope_scaling: { rope_type: 'yarn', factor: 32, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, truncate: false },
      quantization_config: { quant_method: 'mxfp4' },
    });
    expect(cfg.layer_types).toHaveLength(24);
    expect(cfg.layer_types[0]).toBe('sliding_attention');
    expect(cfg.layer_types[23]).toBe('full_attention');
    expect(configJson(GPT_OSS_20B)).toContain('"rms_norm_eps": 1e-05,\n  "rope_scaling": {\n    "beta_fast": 32.0,');
    expect(configJson(GPT_OSS_20B)).toContain('"swiglu_limit": 7.0,');
    const c120 = JSON.parse(configJson(GPT_OSS_120B));
    expect(c120.num_hidden_layers).toBe(36);
    expect(c120.num_local_experts).toBe(128);
    expect(c120.layer_types).toHaveLength(36);
  });

  it('writes an arbitrary small config correctly (odd layer count, non-power-of-2 dims)', async () => {
    const spec: CheckpointSpec = { ...GPT_OSS_20B, vocabSize: 1000, hiddenSize: 96, intermediateSize: 160, numLayers: 3, numExperts: 5, expertsPerToken: 2, numHeads: 6, numKvHeads: 2, headDim: 16, seed: 'abc' };
    const dir = join(tmp, 'odd');
    const res = await writeCheckpoint(dir, spec, { chunkBytes: 4096 });
    const b = await readFile(join(dir, 'model.safetensors'));
    const p = parse(b);
    checkWellFormed(p);
    expect(res.fileBytes).toBe(b.length);
    expect(p.tensors.get('model.layers.2.mlp.experts.gate_up_proj_blocks')!.shape).toEqual([5, 320, 3, 16]);
    expect(p.tensors.get('model.layers.2.mlp.experts.down_proj_blocks')!.shape).toEqual([5, 96, 5, 16]);
    expect(p.tensors.get('model.layers.2.self_attn.q_proj.weight')!.shape).toEqual([96, 96]);
    expect(p.tensors.get('model.layers.2.self_attn.o_proj.weight')!.shape).toEqual([96, 96]);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).layer_types).toEqual(['sliding_attention', 'full_attention', 'sliding_attention']);
    await expect(writeCheckpoint(join(tmp, 'bad'), { ...spec, hiddenSize: 100 })).rejects.toThrow(/multiple of 32/);
  });

  it('CLI: make-checkpoint.mjs writes the preset with overrides and reports bytes', async () => {
    const dir = join(tmp, 'cli');
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'make-checkpoint.mjs'), dir, '--preset', '20b', '--layers', '1', '--vocab', '256', '--hidden', '64', '--intermediate', '64', '--experts', '4', '--seed', '5', '--shards', '2', '--quiet']);
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const bytes = (await stat(join(dir, 'model-00001-of-00002.safetensors'))).size + (await stat(join(dir, 'model-00002-of-00002.safetensors'))).size;
    expect(stdout).toContain(`wrote ${bytes} bytes`);
    const spec = { ...GPT_OSS_20B, numLayers: 1, vocabSize: 256, hiddenSize: 64, intermediateSize: 64, numExperts: 4, seed: 5 };
    expect(index.metadata.total_size).toBe(totalTensorBytes(spec));
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(configJson(spec));
  });
});

describe('make-checkpoint.mjs: routing, window and scale options (the KV-cache checks\' deeper checkpoints)', () => {
  it('writes top-k and the window into config.json and scales q/k and the LM head', async () => {
    const base = join(tmp, 'opts-base'), scaled = join(tmp, 'opts-scaled');
    const common = ['--preset', 'tiny', '--layers', '2', '--experts', '16', '--experts-per-token', '4', '--sliding-window', '24', '--seed', '7', '--quiet'];
    const run = (dir: string, extra: string[]) => promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'make-checkpoint.mjs'), dir, ...common, ...extra]);
    await run(base, []);
    await run(scaled, ['--qk-scale', '2', '--logit-scale', '4']);
    const cfg = JSON.parse(await readFile(join(scaled, 'config.json'), 'utf8'));
    expect([cfg.num_local_experts, cfg.num_experts_per_tok, cfg.sliding_window, cfg.num_hidden_layers]).toEqual([16, 4, 24, 2]);
    const open = (dir: string) => {
      const file = join(dir, 'model.safetensors');
      return { buf: readFileSync(file), p: parseFile(file) };
    };
    const a = open(base), b = open(scaled);
    const ratio = (name: string) => std(tensorValues(b.buf, b.p, name)) / std(tensorValues(a.buf, a.p, name));
    expect(ratio('lm_head.weight')).toBeCloseTo(4, 1);
    expect(ratio('model.layers.1.self_attn.k_proj.weight')).toBeCloseTo(2, 1);
    expect(ratio('model.layers.1.self_attn.v_proj.weight')).toBeCloseTo(1, 5);  // untouched
    await expect(promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'make-checkpoint.mjs'), join(tmp, 'bad'), '--preset', 'tiny', '--logit-scale', '0'])).rejects.toThrow(/--logit-scale must be a positive number/);
  });
});

describe('rng', () => {
  it('is seeded and stream-separated', () => {
    const a = rng(1, 'x');
    const b = rng(1, 'x');
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => rng(1, 'y').nextU32())).not.toEqual(xs);
    expect(Buffer.from(randomBytes(33, 2)).equals(Buffer.from(randomBytes(33, 2)))).toBe(true);
    const r = rng(3);
    const s = Array.from({ length: 20000 }, () => r.nextNormal());
    expect(Math.abs(mean(s))).toBeLessThan(0.03);
    expect(Math.abs(std(s) - 1)).toBeLessThan(0.03);
  });
});

describe('corruptCheckpoint', () => {
  const ref = () => parseFile(join(FIXTURE, 'model.safetensors'));

  it('covers every kind', () => {
    expect([...CORRUPT_KINDS].sort()).toEqual(
      ['config-missing-field', 'header-length-past-eof', 'malformed-header-json', 'missing-tensor', 'offsets-out-of-range', 'offsets-overlap', 'truncated-file', 'wrong-dtype', 'wrong-shape'].sort(),
    );
  });

  it('missing-tensor: a well-formed file without the named tensor', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-missing'), 'missing-tensor');
    expect(r.file).toBe(join(tmp, 'c-missing', 'model.safetensors'));
    const p = parseFile(r.file);
    checkWellFormed(p);
    expect(r.tensorName).toBeTruthy();
    expect(p.tensors.has(r.tensorName!)).toBe(false);
    expect(ref().tensors.has(r.tensorName!)).toBe(true);
    expect(p.tensors.size).toBe(78);
    expect(r.description).toContain(r.tensorName!);
    expect(r.description).toContain(r.file);
  });

  it('wrong-dtype: the tensor relabelled, same byte size', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-dtype'), 'wrong-dtype');
    const p = parseFile(r.file);
    const want = ref().tensors.get(r.tensorName!)!;
    const e = p.tensors.get(r.tensorName!)!;
    expect(e.dtype).not.toBe(want.dtype);
    expect(e.shape).toEqual(want.shape);
    checkWellFormed(p);
    expect(r.description).toContain(r.tensorName!);
  });

  it('wrong-shape: the tensor relabelled, same element count', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-shape'), 'wrong-shape');
    const p = parseFile(r.file);
    const want = ref().tensors.get(r.tensorName!)!;
    const e = p.tensors.get(r.tensorName!)!;
    expect(e.shape).not.toEqual(want.shape);
    expect(e.dtype).toBe(want.dtype);
    expect(e.shape.reduce((a, b) => a * b, 1)).toBe(want.shape.reduce((a, b) => a * b, 1));
    checkWellFormed(p);
  });

  it('header-length-past-eof', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-hlen'), 'header-length-past-eof');
    const b = readFileSync(r.file);
    expect(8 + Number(b.readBigUInt64LE(0))).toBeGreaterThan(b.length);
    expect(r.tensorName).toBeUndefined();
  });

  it('malformed-header-json', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-json'), 'malformed-header-json');
    const b = readFileSync(r.file);
    const n = Number(b.readBigUInt64LE(0));
    expect(8 + n).toBeLessThan(b.length);
    expect(() => JSON.parse(b.subarray(8, 8 + n).toString('utf8'))).toThrow();
    expect(b.length).toBe(7099272);
  });

  it('offsets-out-of-range: the named tensor ends past the data', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-range'), 'offsets-out-of-range');
    const p = parseFile(r.file);
    const e = p.tensors.get(r.tensorName!)!;
    expect(8 + p.n + e.data_offsets[1]).toBeGreaterThan(p.size);
    expect(e.data_offsets[1] - e.data_offsets[0]).toBe(e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype]);
  });

  it('offsets-overlap: the named tensor overlaps its predecessor', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-overlap'), 'offsets-overlap');
    const p = parseFile(r.file);
    const e = p.tensors.get(r.tensorName!)!;
    const o = p.tensors.get(r.otherTensorName!)!;
    expect(e.data_offsets[0]).toBeLessThan(o.data_offsets[1]);
    expect(e.data_offsets[1]).toBeGreaterThan(o.data_offsets[0]);
    expect(e.data_offsets[1] - e.data_offsets[0]).toBe(e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype]);
    for (const [, x] of p.tensors) expect(8 + p.n + x.data_offsets[1]).toBeLessThanOrEqual(p.size);
    expect(r.description).toContain(r.otherTensorName!);
  });

  it('truncated-file: shorter than the header says, the named tensor spans the cut', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-trunc'), 'truncated-file');
    const p = parseFile(r.file);
    const end = Math.max(...[...p.tensors.values()].map((e) => e.data_offsets[1]));
    expect(p.size).toBeLessThan(8 + p.n + end);
    const e = p.tensors.get(r.tensorName!)!;
    expect(8 + p.n + e.data_offsets[0]).toBeLessThan(p.size);
    expect(8 + p.n + e.data_offsets[1]).toBeGreaterThan(p.size);
  });

  it('config-missing-field: config.json without the field, otherwise unchanged', async () => {
    const r = await corruptCheckpoint(join(tmp, 'c-config'), 'config-missing-field');
    expect(r.file).toBe(join(tmp, 'c-config', 'config.json'));
    expect(r.field).toBe('hidden_size');
    const cfg = JSON.parse(readFileSync(r.file, 'utf8'));
    const want = JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8'));
    expect('hidden_size' in cfg).toBe(false);
    delete want.hidden_size;
    expect(cfg).toEqual(want);
    checkWellFormed(parseFile(join(tmp, 'c-config', 'model.safetensors')));
    for (const field of ['vocab_size', 'layer_types', 'rope_scaling']) {
      const r2 = await corruptCheckpoint(join(tmp, `c-config-${field}`), 'config-missing-field', { field });
      const c2 = JSON.parse(readFileSync(r2.file, 'utf8'));
      expect(field in c2).toBe(false);
      expect(Object.keys(c2).length).toBe(Object.keys(want).length); // want already lacks hidden_size
    }
  });
});
