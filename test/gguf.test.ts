// GGUF files: the same weights as a Hugging Face checkpoint, converted by this project's writer
// (scripts/gguf-writer.mjs, llama.cpp's layout), load to the same model; every kind of damage is a
// named error.
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadModel, openCheckpoint, readGguf, type GptOssModel } from '../lib/index.js';
import { writeGgufFromCheckpoint } from '../scripts/gguf-writer.mjs';
import { argmaxRows, fixtureDir, greedyContinuation, readJson, relL2 } from './helpers/fixtures.js';
import { native } from '../lib/native.js';

const CUDA = native.cudaUnavailableReason() === '';

const root = mkdtempSync(join(tmpdir(), 'gpt-oss-gguf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const tokens = readJson<number[]>('tiny-a', 'tokens.json');
const greedy = readJson<number[]>('tiny-a', 'greedy.json');
const V = 1024;
const TEMPLATE = '{# harmony #}{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}';

describe('GGUF: the same weights as the safetensors checkpoint', () => {
  const bf16Path = join(root, 'tiny-a-bf16.gguf');
  const q8Path = join(root, 'tiny-a-q8.gguf');
  let hf: GptOssModel;
  let hfLogits: Float32Array;
  beforeAll(async () => {
    await writeGgufFromCheckpoint(fixtureDir('tiny-a'), bf16Path, { dense: 'BF16', chatTemplate: TEMPLATE });
    // denseWeights: 'q8' keeps the embedding in bf16 (a decode step reads one row of it).
    await writeGgufFromCheckpoint(fixtureDir('tiny-a'), q8Path, { dense: 'Q8_0', embedding: 'BF16' });
    hf = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    hfLogits = await hf.forward(tokens);
  });
  afterAll(async () => {
    await hf.dispose();
  });

  it('parses the header, metadata and tensor table into the config config.json gives', () => {
    const g = readGguf(bf16Path);
    expect(g.version).toBe(3);
    expect(g.metadata.get('general.architecture')).toBe('gpt-oss');
    // ggml dims are innermost first; shapes here are outermost first, as in safetensors.
    expect(g.tensors.get('blk.0.attn_q.weight')).toMatchObject({ dims: [256, 512], shape: [512, 256], type: 'BF16' });
    expect(g.tensors.get('blk.0.ffn_gate_exps.weight')).toMatchObject({ dims: [256, 256, 8], shape: [8, 256, 256], type: 'MXFP4' });
    const ck = openCheckpoint(bf16Path);
    expect(ck.format).toBe('gguf');
    const { eosTokenIds: _a, rmsNormEps: epsG, ...fromGguf } = ck.config;
    const { eosTokenIds: _b, rmsNormEps: epsH, ...fromJson } = hf.config;
    expect(fromGguf).toEqual(fromJson);
    expect(Math.fround(epsG)).toBe(Math.fround(epsH)); // GGUF stores it as f32
    expect(ck.gguf).toMatchObject({ version: 3, architecture: 'gpt-oss', chatTemplate: TEMPLATE, tensorTypes: { BF16: 18, F32: 49, MXFP4: 12 } });
  });

  it('maps the tensors in place (no copy) and says what it loaded', async () => {
    const m = await loadModel(q8Path, { device: 'cpu' });
    expect(m.info.format).toBe('gguf');
    expect(m.info.conversions).toEqual([]);
    const group = (name: string) => m.info.groups.find((g) => g.group === name)!;
    expect(group('experts')).toMatchObject({ fileDtype: 'mxfp4-ggml+f32', dtype: 'mxfp4-ggml+f32', convertedBytes: 0 });
    expect(group('attention')).toMatchObject({ fileDtype: 'q8_0+f32', dtype: 'q8_0+f32', convertedBytes: 0 });
    expect(group('embedding').dtype).toBe('bf16');
    expect(group('router').dtype).toBe('f32');
    for (const g of m.info.groups) expect(g.memoryBytes).toBe(g.fileBytes);
    await m.dispose();
  });

  it('bf16 dense tensors: logits equal the safetensors form to f32 rounding, greedy continuation equal to transformers\'', async () => {
    const m = await loadModel(bf16Path, { device: 'cpu' });
    const logits = await m.forward(tokens);
    const err = relL2(logits, hfLogits);
    console.log(`tiny-a GGUF (bf16 dense, ggml MXFP4 experts) vs safetensors: rel L2 ${err.toExponential(3)}`);
    // Same values; only the order of a block's 32 products differs (ggml's nibble order).
    expect(err).toBeLessThan(1e-5);
    expect(argmaxRows(logits, V)).toEqual(argmaxRows(hfLogits, V));
    expect(await greedyContinuation(m, tokens, greedy.length)).toEqual(greedy);
    await m.dispose();
  });

  it('Q8_0 dense tensors equal the safetensors form quantized at load (denseWeights q8)', async () => {
    const gguf = await loadModel(q8Path, { device: 'cpu' });
    const q8 = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', denseWeights: 'q8' });
    expect(q8.info.conversions).toEqual(['attention: bf16 -> q8_0 (denseWeights q8)', 'lmHead: bf16 -> q8_0 (denseWeights q8)']);
    expect(q8.info.groups.find((g) => g.group === 'lmHead')).toMatchObject({ fileDtype: 'bf16', dtype: 'q8_0', convertedBytes: (1024 * 256 * 34) / 32 });
    const a = await gguf.forward(tokens);
    const b = await q8.forward(tokens);
    expect(relL2(a, b)).toBeLessThan(1e-5);
    const fidelity = relL2(b, hfLogits);
    console.log(`tiny-a q8 dense vs bf16: rel L2 ${fidelity.toExponential(3)}`);
    expect(fidelity).toBeLessThan(0.5); // tiny-a's random weights amplify errors: see bench/RESULTS.md (q8 fidelity)
    expect(await greedyContinuation(gguf, tokens, 8)).toEqual(await greedyContinuation(q8, tokens, 8));
    await gguf.dispose();
    await q8.dispose();
  });

  it('gpt-oss info says what it loaded (format, groups, conversions, GGUF metadata)', () => {
    const cli = join(__dirname, '..', 'dist', 'cli', 'index.js');
    const text = execFileSync(process.execPath, [cli, 'info', bf16Path, '--device', 'cpu'], { encoding: 'utf8' });
    expect(text).toMatch(/format: gguf \(GGUF v3, 18 BF16, 49 F32, 12 MXFP4, chat template in metadata\)/);
    expect(text).toMatch(/experts: mxfp4-ggml\+f32: .* \/ .*/);
    expect(text).toContain('converted at load: nothing (weights read in place from the file mapping)');
    const q8 = JSON.parse(execFileSync(process.execPath, [cli, 'info', fixtureDir('tiny-a'), '--device', 'cpu', '--dense-weights', 'q8', '--json'], { encoding: 'utf8' }));
    expect(q8.format).toBe('safetensors');
    expect(q8.conversions).toHaveLength(2);
    expect(q8.weightBytes).toBe(q8.groups.reduce((a: number, g: { memoryBytes: number }) => a + g.memoryBytes, 0));
    expect(q8.weightBytes).toBeLessThan(q8.bytesOnDisk);
  });

  it('finds the one .gguf in a directory, and files without the extension (Ollama blobs)', async () => {
    const dir = join(root, 'dir-with-gguf');
    mkdirSync(dir);
    copyFileSync(bf16Path, join(dir, 'model.gguf'));
    expect(openCheckpoint(dir).files).toEqual([join(dir, 'model.gguf')]);
    const blob = join(root, 'sha256-0123abcd');
    copyFileSync(bf16Path, blob);
    expect(openCheckpoint(blob).format).toBe('gguf');
  });

  it('f32 and f16 dense tensors load too', async () => {
    for (const dense of ['F32', 'F16'] as const) {
      const p = join(root, `tiny-a-${dense}.gguf`);
      await writeGgufFromCheckpoint(fixtureDir('tiny-a'), p, { dense, router: 'BF16', vectors: 'BF16' });
      const m = await loadModel(p, { device: 'cpu' });
      const err = relL2(await m.forward(tokens), hfLogits);
      expect(err).toBeLessThan(dense === 'F32' ? 1e-5 : 1e-2); // f32 holds bf16 exactly; f16 rounds small values
      await m.dispose();
    }
  });

  // On CUDA the experts are repacked into the Hugging Face blocks (gate and up rows interleaved again)
  // and Q8_0 is repacked at upload. Without a CUDA device (CI) loading there is a clear error.
  it.skipIf(CUDA)('without a CUDA device, loading a GGUF there is a clear error', async () => {
    await expect(loadModel(bf16Path, { device: 'cuda' })).rejects.toThrow(/CUDA|cuda/);
  });
  it('device auto loads a GGUF on CUDA where there is one (run on an H200), else on the CPU', async () => {
    const m = await loadModel(bf16Path);
    expect(m.device).toBe(CUDA ? 'cuda:0' : 'cpu');
    if (CUDA) expect(m.info.fallbackReason).toBeUndefined();
    // CPU: the same values (1e-5 in the test below); CUDA: its default f32k-f16v cache gave 2.7e-4 on tiny-a
    expect(relL2(await m.forward(tokens), hfLogits)).toBeLessThan(1e-2);
    await m.dispose();
  });
  it.runIf(CUDA)('on CUDA: the greedy continuation equals the safetensors form\'s; Q8_0 dense close to the CPU\'s', async () => {
    const st = await loadModel(fixtureDir('tiny-a'), { device: 'cuda' });
    const want = await greedyContinuation(st, tokens, greedy.length);
    const stLogits = await st.forward(tokens);
    await st.dispose();
    const m = await loadModel(bf16Path, { device: 'cuda' });
    expect(m.info.conversions).toContain('experts: gate and up joined into gate_up, rows interleaved (the GPU kernels\' layout)');
    expect(await greedyContinuation(m, tokens, greedy.length)).toEqual(want);
    const cudaLogits = await m.forward(tokens);
    console.log(`tiny-a GGUF (bf16 dense) on CUDA vs the safetensors form on CUDA: rel L2 ${relL2(cudaLogits, stLogits).toExponential(3)}, on the CPU ${relL2(cudaLogits, hfLogits).toExponential(3)}`);
    expect(relL2(cudaLogits, stLogits)).toBeLessThan(1e-5);
    await m.dispose();
    const cpuQ8 = await loadModel(q8Path, { device: 'cpu' });
    const onCpu = await cpuQ8.forward(tokens);
    await cpuQ8.dispose();
    const q8 = await loadModel(q8Path, { device: 'cuda' });
    const got = await q8.forward(tokens);
    const err = relL2(got, onCpu);
    const a = argmaxRows(got, V), b = argmaxRows(onCpu, V);
    console.log(`tiny-a GGUF (Q8_0 dense) CUDA vs CPU: rel L2 ${err.toExponential(3)}, argmax ${a.filter((x, i) => x === b[i]).length}/${a.length}`);
    expect(err).toBeLessThan(1e-2); // a 16-bit CUDA KV cache alone gives 4e-4 (f16) to 3.5e-3 (bf16) on tiny-a
    await q8.dispose();
  });
});

describe('damaged GGUF files fail with named errors', () => {
  const good = join(root, 'good.gguf');
  beforeAll(async () => {
    await writeGgufFromCheckpoint(fixtureDir('tiny-a'), good, { dense: 'Q8_0' });
  });
  const copy = (name: string): string => {
    const p = join(root, name);
    copyFileSync(good, p);
    return p;
  };
  /** The byte position of a tensor's info record (its name string's length prefix). */
  const infoAt = (p: string, name: string): number => {
    const buf = readFileSync(p);
    const key = Buffer.concat([Buffer.from([name.length, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(name)]);
    const at = buf.indexOf(key);
    expect(at).toBeGreaterThan(0);
    return at + key.length; // n_dims follows
  };
  const patch = (p: string, pos: number, bytes: Buffer) => {
    const fd = openSync(p, 'r+');
    writeSync(fd, bytes, 0, bytes.length, pos);
    closeSync(fd);
  };

  it('a truncated file', async () => {
    const p = copy('truncated.gguf');
    truncateSync(p, Math.floor(readFileSync(p).length / 2));
    const e = await loadModel(p, { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/truncated\.gguf: tensor '.*': data .* runs past the end of the data .* truncated/);
  });

  it('a file cut inside its header', async () => {
    const p = copy('cut-header.gguf');
    truncateSync(p, 200);
    await expect(loadModel(p, { device: 'cpu' })).rejects.toThrow(/cut-header\.gguf: .*(past the end|ended early|cannot fit)/);
  });

  it('a tensor of a type the runtime does not read names the tensor and the type', async () => {
    const p = copy('bad-type.gguf');
    const name = 'blk.1.attn_k.weight';
    const at = infoAt(p, name);
    // n_dims (2), dims (2 x u64), then the type: Q8_0 (8) -> Q4_0 (2), same block of 32 (the size check passes).
    const b = Buffer.alloc(4);
    b.writeUInt32LE(2);
    patch(p, at + 4 + 16, b);
    const e = await loadModel(p, { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/bad-type\.gguf: tensor 'blk\.1\.attn_k\.weight': has type Q4_0, which this runtime does not read/);
    // An unknown ggml type id is caught by the parser.
    b.writeUInt32LE(77);
    patch(p, at + 4 + 16, b);
    await expect(loadModel(p, { device: 'cpu' })).rejects.toThrow(/tensor 'blk\.1\.attn_k\.weight': unknown ggml type 77/);
  });

  it('an offset past the end', async () => {
    const p = copy('bad-offset.gguf');
    const at = infoAt(p, 'output.weight');
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(1n << 40n);
    patch(p, at + 4 + 16 + 4, b);
    const e = await loadModel(p, { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/bad-offset\.gguf: tensor 'output\.weight': data \[\d+, \d+\) .* runs past the end/);
  });

  it('a misaligned offset', async () => {
    const p = copy('misaligned.gguf');
    const at = infoAt(p, 'output.weight');
    const off = readFileSync(p).readBigUInt64LE(at + 4 + 16 + 4);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(off + 2n);
    patch(p, at + 4 + 16 + 4, b);
    await expect(loadModel(p, { device: 'cpu' })).rejects.toThrow(/tensor 'output\.weight': data offset \d+ is not a multiple of the alignment 32/);
  });

  it('a missing tensor', async () => {
    const p = copy('missing.gguf');
    const at = infoAt(p, 'blk.2.attn_sinks.weight');
    patch(p, at - 'weight'.length, Buffer.from('weighX'));
    const e = await loadModel(p, { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/missing\.gguf: tensor 'blk\.2\.attn_sinks\.weight': is missing/);
  });

  it('a tensor of the wrong shape', async () => {
    const p = copy('shape.gguf');
    const at = infoAt(p, 'blk.0.attn_v.weight');
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(64n); // rows 128 -> 64 (the data still fits)
    patch(p, at + 4 + 8, b);
    await expect(loadModel(p, { device: 'cpu' })).rejects.toThrow(/tensor 'blk\.0\.attn_v\.weight': has shape \[64, 256\], expected \[128, 256\]/);
  });

  // Found by scripts/fuzz.mjs's GGUF kind (15th session): before, a layer count of 2^32 - 1 ran the process out of
  // memory building the layer types (SIGABRT), and a dimension past 2^40 beside a zero one reached the native
  // tensor as an untyped RangeError.
  it('a layer count past the bounds config.json has, a dimension past the runtime\'s', async () => {
    const p = copy('layers.gguf');
    const buf = readFileSync(p);
    const key = Buffer.from('gpt-oss.block_count');
    const at = buf.indexOf(key) + key.length + 4; // the u32 value after the type tag
    const b = Buffer.alloc(4);
    b.writeUInt32LE(0xffffffff);
    patch(p, at, b);
    const e = await loadModel(p, { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/layers\.gguf: metadata 'gpt-oss\.block_count' must be an integer in \[1, 4096\], got 4294967295/);
    const d = copy('dims.gguf');
    const info = infoAt(d, 'output.weight'); // n_dims 2, dims (innermost first), type, offset
    const dims = Buffer.alloc(16);
    dims.writeBigUInt64LE(0n, 0);
    dims.writeBigUInt64LE(1n << 45n, 8);
    patch(d, info + 4, dims);
    const f = await loadModel(d, { device: 'cpu' }).catch((x) => x);
    expect(f).toBeInstanceOf(CheckpointError);
    expect(f.message).toMatch(/dims\.gguf: tensor 'output\.weight': shape \[35184372088832,0\]: dimension 35184372088832 exceeds the runtime's 1099511627776 elements/);
  });

  it('not a GGUF file, another architecture, a bad version', async () => {
    const p = copy('magic.gguf');
    patch(p, 0, Buffer.from('GGUX'));
    await expect(loadModel(p, { device: 'cpu' })).rejects.toThrow(/magic\.gguf: is a file, not a checkpoint directory .* or a GGUF file/);
    const v = copy('version.gguf');
    patch(v, 4, Buffer.from([9, 0, 0, 0]));
    await expect(loadModel(v, { device: 'cpu' })).rejects.toThrow(/version\.gguf: GGUF version 9 is not supported/);
    const a = join(root, 'llama.gguf');
    await writeGgufFromCheckpoint(fixtureDir('tiny-a'), a, { architecture: 'llama' });
    await expect(loadModel(a, { device: 'cpu' })).rejects.toThrow(/llama\.gguf: general\.architecture is "llama", this runtime loads gpt-oss/);
  });
});

// llama.cpp's gguf-split (the published gpt-oss-120b GGUFs come in 3 parts: gpt-oss-120b-mxfp4-00001-of-00003.gguf):
// any part's path, or the folder holding the parts, opens them all, each mapped in place.
describe('split GGUF (gguf-split parts)', () => {
  const whole = join(root, 'split-whole.gguf');
  const dir = join(root, 'split3');
  const stem = join(dir, 'tiny-a-mxfp4');
  const part = (i: number, n = 3) => `${stem}-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.gguf`;
  let want: Float32Array;
  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    await writeGgufFromCheckpoint(fixtureDir('tiny-a'), whole, { dense: 'Q8_0' });
    const r = await writeGgufFromCheckpoint(fixtureDir('tiny-a'), `${stem}.gguf`, { dense: 'Q8_0', splits: 3 });
    expect(r.files).toEqual([part(1), part(2), part(3)]);
    const m = await loadModel(whole, { device: 'cpu' });
    want = await m.forward(tokens);
    await m.dispose();
  });

  it('any part, or the folder, loads all three: the same logits as the single file', async () => {
    for (const p of [part(1), part(3), dir]) {
      const m = await loadModel(p, { device: 'cpu' });
      expect(m.info.files).toEqual([part(1), part(2), part(3)]);
      expect(m.info.gguf!.splitCount).toBe(3);
      const types: Record<string, number> = {};
      for (const t of readGguf(whole).tensors.values()) types[t.type] = (types[t.type] ?? 0) + 1;
      expect(m.info.gguf!.tensorTypes).toEqual(types);
      const logits = await m.forward(tokens);
      expect(Buffer.from(logits.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      await m.dispose();
    }
  });

  it('a missing part names the file it looked for', async () => {
    const d = join(root, 'split-missing');
    mkdirSync(d, { recursive: true });
    for (const i of [1, 3]) copyFileSync(part(i), join(d, basename(part(i))));
    const e = await loadModel(join(d, basename(part(1))), { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(join(d, basename(part(2))));
    expect(e.message).toMatch(/is missing: part 2 of the GGUF split in 3/);
  });

  it('a renamed part (the others cannot be found) and a part of another split say so', async () => {
    const d = join(root, 'split-renamed');
    mkdirSync(d, { recursive: true });
    copyFileSync(part(1), join(d, 'model.gguf'));
    const e = await loadModel(join(d, 'model.gguf'), { device: 'cpu' }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/is part 1 of a GGUF split in 3 .* does not end in -00001-of-00003\.gguf/);
    const d2 = join(root, 'split-mixed');
    mkdirSync(d2, { recursive: true });
    for (const i of [1, 2, 3]) copyFileSync(part(i), join(d2, basename(part(i))));
    copyFileSync(part(3), join(d2, basename(part(2)))); // part 3's bytes under part 2's name
    const e2 = await loadModel(join(d2, basename(part(1))), { device: 'cpu' }).catch((x) => x);
    expect(e2).toBeInstanceOf(CheckpointError);
    expect(e2.message).toMatch(/-00002-of-00003\.gguf: is not part 2 of 3 .* split\.no \/ split\.count: 2 \/ 3/);
  });
});

describe('the GGUF writer owns its checkpoint fds', () => {
  const openFds = (): number => readdirSync('/proc/self/fd').length;
  it.runIf(process.platform === 'linux')('concurrent writes both finish; a bad option or a damaged shard leaves no fd open', async () => {
    const before = openFds();
    // Two at once: each call closes only its own fds (a shared list let the first to finish close the other's).
    const [a, b] = [join(root, 'conc-a.gguf'), join(root, 'conc-b.gguf')];
    const [ra, rb] = await Promise.all([
      writeGgufFromCheckpoint(fixtureDir('tiny-a'), a, { dense: 'Q8_0' }),
      writeGgufFromCheckpoint(fixtureDir('tiny-a'), b, { dense: 'BF16' }),
    ]);
    expect(ra.fileBytes).toBeGreaterThan(0);
    expect(rb.fileBytes).toBeGreaterThan(0);
    expect(readGguf(a).tensors.size).toBeGreaterThan(0);
    expect(readGguf(a).tensors.size).toBe(readGguf(b).tensors.size);
    expect(openFds()).toBe(before);
    // A rejected option, after the shards were opened.
    await expect(writeGgufFromCheckpoint(fixtureDir('tiny-a'), join(root, 'bad-vocab.gguf'), { vocab: 'full' as 'none' })).rejects.toThrow(/vocab must be 'none' or 'placeholder'/);
    expect(openFds()).toBe(before);
    // A shard whose header is cut short: the error names the file, and its fd is closed too.
    const damaged = join(root, 'damaged-ckpt');
    mkdirSync(damaged);
    copyFileSync(join(fixtureDir('tiny-a'), 'config.json'), join(damaged, 'config.json'));
    const shard = join(damaged, 'model.safetensors');
    copyFileSync(join(fixtureDir('tiny-a'), 'model.safetensors'), shard);
    truncateSync(shard, 100);
    await expect(writeGgufFromCheckpoint(damaged, join(root, 'damaged.gguf'), {})).rejects.toThrow(/model\.safetensors: unexpected end of file/);
    expect(openFds()).toBe(before);
  });
});
