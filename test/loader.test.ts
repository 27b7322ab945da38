// Checkpoint loading: the real layout (single file and shards) and every kind of damage, each
// reported with an error that names the file and the tensor or field, never a crash.
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError, DeviceUnavailableError, loadModel, openCheckpoint, resolveDevice } from '../lib/index.js';
import { native } from '../lib/native.js';
import { CORRUPT_KINDS, TINY, corruptCheckpoint, writeCheckpoint } from './helpers/checkpoint.js';
import { fixtureDir, readF32, readJson, relL2 } from './helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'gpt-oss-loader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('openCheckpoint', () => {
  it('lists every tensor of tiny-a with absolute offsets inside the file', () => {
    const ck = openCheckpoint(fixtureDir('tiny-a'));
    expect(ck.files).toHaveLength(1);
    expect(ck.tensors).toHaveLength(3 + 4 * 19);
    expect(ck.bytesOnDisk).toBe(7099272);
    const q = ck.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(q).toMatchObject({ dtype: 'BF16', shape: [512, 256], length: 512 * 256 * 2 });
    for (const t of ck.tensors) expect(t.offset + t.length).toBeLessThanOrEqual(ck.bytesOnDisk);
  });

  it('loads a sharded checkpoint to the same logits as the single file', async () => {
    // The writer draws each tensor from its own seeded stream, so both hold the same weights.
    const single = join(root, 'single');
    const sharded = join(root, 'sharded');
    await writeCheckpoint(single, TINY);
    const res = await writeCheckpoint(sharded, TINY, { shards: 3 });
    expect(res.files).toHaveLength(3);
    expect(openCheckpoint(sharded).files).toHaveLength(3);
    const tokens = readJson<number[]>('tiny-a', 'tokens.json');
    const a = await loadModel(single, { device: 'cpu' });
    const b = await loadModel(sharded, { device: 'cpu' });
    const la = await a.forward(tokens);
    const lb = await b.forward(tokens);
    expect(Array.from(lb)).toEqual(Array.from(la));
    // Not a degenerate model: logits vary, and differ from tiny-a's (other random weights).
    expect(relL2(la, readF32('tiny-a', 'logits.f32'))).toBeGreaterThan(0.1);
    await a.dispose();
    await b.dispose();
  });
});

describe('bad checkpoints fail with named errors', () => {
  const cases: Record<string, { type: typeof Error; pattern: (r: { tensorName?: string; field?: string }) => RegExp }> = {
    'missing-tensor': { type: CheckpointError, pattern: (r) => new RegExp(`model\\.safetensors: tensor '${esc(r.tensorName!)}': is missing`) },
    'wrong-dtype': { type: CheckpointError, pattern: (r) => new RegExp(`model\\.safetensors: tensor '${esc(r.tensorName!)}': has dtype F16, expected BF16`) },
    'wrong-shape': { type: CheckpointError, pattern: (r) => new RegExp(`tensor '${esc(r.tensorName!)}': has shape \\[\\d+, \\d+\\], expected BF16\\[\\d+, \\d+\\]`) },
    'header-length-past-eof': { type: CheckpointError, pattern: () => /model\.safetensors: header length \d+ runs past the end of the file/ },
    'malformed-header-json': { type: CheckpointError, pattern: () => /model\.safetensors: malformed header JSON/ },
    'offsets-out-of-range': { type: CheckpointError, pattern: (r) => new RegExp(`model\\.safetensors: tensor '${esc(r.tensorName!)}': data_offsets .* run past the end`) },
    'offsets-overlap': { type: CheckpointError, pattern: (r) => new RegExp(`model\\.safetensors: tensor '${esc(r.tensorName!)}': data overlaps tensor`) },
    'truncated-file': { type: CheckpointError, pattern: () => /model\.safetensors: tensor '.*': data_offsets .* the file is truncated/ },
    'config-missing-field': { type: ConfigError, pattern: (r) => new RegExp(`config\\.json: field '${esc(r.field ?? 'hidden_size')}': missing required field`) },
  };
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it('covers every kind of damage the generator makes', () => {
    expect(Object.keys(cases).sort()).toEqual([...CORRUPT_KINDS].sort());
  });

  for (const kind of Object.keys(cases)) {
    it(`${kind}`, async () => {
      const dir = join(root, kind);
      const r = await corruptCheckpoint(dir, kind as (typeof CORRUPT_KINDS)[number]);
      const { type, pattern } = cases[kind];
      let error: unknown;
      try {
        const m = await loadModel(dir, { device: 'cpu' });
        await m.dispose();
      } catch (e) {
        error = e;
      }
      expect(error, r.description).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(pattern(r));
      // The process and the addon keep working after the failure.
      const ok = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
      expect((await ok.forward([1, 2])).length).toBe(2 * 1024);
      await ok.dispose();
    });
  }

  it('names the directory when there is no checkpoint in it', async () => {
    const dir = join(root, 'empty');
    await writeCheckpoint(dir, TINY);
    rmSync(join(dir, 'model.safetensors'));
    await expect(loadModel(dir, { device: 'cpu' })).rejects.toThrow(/has no model\.safetensors or model\.safetensors\.index\.json/);
    await expect(loadModel(join(root, 'does-not-exist'), { device: 'cpu' })).rejects.toThrow(/does-not-exist: not found$/);
  });

  it('rejects a config whose layer_types does not match the layer count', async () => {
    const dir = join(root, 'layer-types');
    await writeCheckpoint(dir, TINY);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    cfg.layer_types = ['sliding_attention'];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    await expect(loadModel(dir, { device: 'cpu' })).rejects.toThrow(/config\.json: field 'layer_types'/);
  });

  it('rejects an index.json that lists a tensor its shard lacks', async () => {
    const dir = join(root, 'bad-index');
    const res = await writeCheckpoint(dir, TINY, { shards: 2 });
    const index = JSON.parse(readFileSync(res.indexPath!, 'utf8'));
    index.weight_map['model.layers.9.mlp.router.bias'] = Object.values(index.weight_map)[0];
    writeFileSync(res.indexPath!, JSON.stringify(index));
    await expect(loadModel(dir, { device: 'cpu' })).rejects.toThrow(/tensor 'model\.layers\.9\.mlp\.router\.bias': listed in model\.safetensors\.index\.json but absent/);
  });
});

describe('device selection', () => {
  it("'auto' falls back to the CPU with a stated reason when CUDA is unusable, and 'cuda' is then a clear error", async () => {
    const reason = native.cudaUnavailableReason();
    if (reason === '') {
      expect(resolveDevice('auto').device).toBe('cuda:0');
      return;
    }
    const hipReason = native.hipUnavailableReason();
    if (hipReason === '') {
      expect(resolveDevice('auto').device).toBe('hip:0');
      return;
    }
    expect(resolveDevice('auto')).toEqual({ device: 'cpu', fallbackReason: `CUDA unavailable: ${reason}; HIP unavailable: ${hipReason}` });
    const m = await loadModel(fixtureDir('tiny-a'), { device: 'auto' });
    expect(m.device).toBe('cpu');
    expect(m.info.fallbackReason).toContain('CUDA unavailable');
    await m.dispose();
    const err = await loadModel(fixtureDir('tiny-a'), { device: 'cuda' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    expect((err as DeviceUnavailableError).message).toMatch(/device 'cuda' requested but CUDA is unavailable/);
    expect((err as DeviceUnavailableError).reason).toBe(reason);
    await expect(loadModel(fixtureDir('tiny-a'), { device: 'tpu' as 'cpu' })).rejects.toThrow(RangeError);
  });

  it('auto runs GGUF files on CUDA (run on an H200) and keeps them on the CPU on HIP (not run on an AMD GPU); a named device or safetensors is unchanged', async () => {
    const { autoDeviceForFormat } = await import('../lib/model.js');
    const cuda = { device: 'cuda:0' };
    expect(autoDeviceForFormat('auto', cuda, 'gguf')).toEqual({ device: 'cuda:0' });
    expect(autoDeviceForFormat('auto', { device: 'cuda:1' }, 'gguf').device).toBe('cuda:1');
    const hip = autoDeviceForFormat('auto', { device: 'hip:1' }, 'gguf');
    expect(hip.device).toBe('cpu');
    expect(hip.fallbackReason).toMatch(/^GGUF on hip: its kernels are compiled for AMD GPUs but have not yet run on one.*device: 'hip:1'/);
    expect(autoDeviceForFormat('auto', { device: 'hip:0' }, 'safetensors')).toEqual({ device: 'hip:0' });
    expect(autoDeviceForFormat('hip', { device: 'hip:0' }, 'gguf')).toEqual({ device: 'hip:0' });
    expect(autoDeviceForFormat('cuda', cuda, 'gguf')).toBe(cuda);
    const cpu = { device: 'cpu', fallbackReason: 'CUDA unavailable: x' };
    expect(autoDeviceForFormat('auto', cpu, 'gguf')).toBe(cpu);
  });
});

describe('the reason CUDA is unavailable', () => {
  it('says that no NVIDIA driver was found on a machine without one (CUDA builds)', () => {
    const reason = native.cudaUnavailableReason();
    if (reason === '' || reason.includes('no CUDA backend')) {
      // a GPU machine, or a CPU-only build: the driver probe did not run
      expect(reason === '' || /compiled without nvcc/.test(reason)).toBe(true);
      return;
    }
    if (!existsSync('/dev/nvidiactl') && !existsSync('/proc/driver/nvidia/version')) {
      expect(reason).toMatch(/no NVIDIA driver was found/);
      expect(reason).not.toMatch(/insufficient/);
    }
  });
});

describe('load progress', () => {
  it('counts the page-in of the files on the CPU, from 0 to the bytes on disk', async () => {
    const seen: [number, number][] = [];
    const m = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', onProgress: (d, t) => seen.push([d, t]) });
    // progress arrives through a thread-safe function: let the last calls land
    await new Promise((r) => setTimeout(r, 50));
    // file bytes (the page-in), not the tensors' bytes (what binding a mapping counted before)
    expect(m.info.bytesOnDisk).not.toBe(m.info.weightBytes);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    for (const [, t] of seen) expect(t).toBe(m.info.bytesOnDisk);
    for (let i = 1; i < seen.length; i++) expect(seen[i][0]).toBeGreaterThanOrEqual(seen[i - 1][0]);
    expect(seen.at(-1)![0]).toBe(m.info.bytesOnDisk);
    await m.dispose();
  });
});
