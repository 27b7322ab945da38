// bf16 experts on a GPU (loadModel's experts: 'bf16' with device: 'cuda'). The CUDA kernels read the
// experts as [E, out, in] rows (backend.h MoeWeights): the loader transposes transformers' [E, in, out]
// at upload with kernels.transposeExperts. What can be checked without a GPU is checked here: the
// re-layout itself, and the CUDA kernels' arithmetic (native/cuda/moe_bf16.cu: act = swiglu of rows
// 2j / 2j + 1, out = sum_j w_j (down rows . act + b)) written in plain JS over the re-laid-out weights,
// against the CPU backend's moe on transformers' layout. The device itself runs in
// scripts/gpu-model-check.mjs and gpu_check (GPTOSS_CHECK_BF16_EXPERTS in scripts/gpu-all.sh), and
// here below when CUDA is present.
import { describe, expect, it } from 'vitest';
import { createSyntheticModel, loadModel } from '../lib/index.js';
import { autoDeviceForFormat, hasDenseExperts } from '../lib/model.js';
import { native } from '../lib/native.js';
import { ops, reference, transposeExperts } from '../lib/ops.js';
import { Tensor, fromBf16 } from '../lib/tensor.js';
import { argmaxRows, fixtureDir, readF32, readJson, relL2 } from './helpers/fixtures.js';
import { randn, rng } from './cpu/util.js';

const CUDA = native.cudaUnavailableReason() === '';

describe('kernels.transposeExperts (the upload re-layout of bf16 experts)', () => {
  it('moves element [e, a, b] to [e, b, a] for bf16 and f32, and back', () => {
    const r = rng('transpose-experts');
    for (const [E, A, B] of [[3, 64, 130], [2, 1, 5], [1, 77, 64], [4, 200, 96]]) {
      const values = randn(r, E * A * B, 1);
      const src = Tensor.fromBf16(values, [E, A, B]);
      const bits = src.read() as Uint16Array; // bf16 tensors read back as their 16-bit patterns
      const out = Tensor.empty('bf16', [E, B, A]);
      transposeExperts(src, out);
      const got = out.read() as Uint16Array;
      for (let e = 0; e < E; e++)
        for (let a = 0; a < A; a++)
          for (let b = 0; b < B; b++) if (got[(e * B + b) * A + a] !== bits[(e * A + a) * B + b]) throw new Error(`bf16 [${E}, ${A}, ${B}] differs at ${e}, ${a}, ${b}`);
      const back = Tensor.empty('bf16', [E, A, B]);
      transposeExperts(out, back);
      expect(back.read()).toEqual(bits);
      const f = Tensor.fromF32(values, [E, A, B]);
      const fo = Tensor.empty('f32', [E, B, A]);
      transposeExperts(f, fo);
      const fg = fo.read() as Float32Array;
      expect(fg[(0 * B + B - 1) * A + A - 1]).toBe(values[(0 * A + A - 1) * B + B - 1]);
      expect(fg[((E - 1) * B + 0) * A + A - 1]).toBe(values[((E - 1) * A + A - 1) * B + 0]);
    }
  });

  it('names the argument when a shape, dtype or layout is wrong', () => {
    const src = Tensor.fromBf16(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    expect(() => transposeExperts(src, Tensor.empty('bf16', [2, 3, 4]))).toThrow(/transposeExperts: out.*\[2, 4, 3\]/);
    expect(() => transposeExperts(src, Tensor.empty('f32', [2, 4, 3]))).toThrow(/transposeExperts: out/);
    expect(() => transposeExperts(Tensor.fromBf16(new Float32Array(12), [3, 4]), Tensor.empty('bf16', [4, 3]))).toThrow(/transposeExperts: src/);
    expect(() => transposeExperts(Tensor.fromI32(new Int32Array(24), [2, 3, 4]), Tensor.empty('i32', [2, 4, 3]))).toThrow(/transposeExperts: src must be bf16, f16 or f32/);
  });
});

const values = (t: Tensor): Float32Array => fromBf16(t.read() as Uint16Array);

// The CUDA bf16 expert kernels' arithmetic on [E, out, in] rows, in double: what moe_bf16.cu computes
// for each (token, expert) pair (and the grouped tile: the same products, summed in another order).
function gpuLayoutMoe(x: Float32Array, n: number, H: number, I: number, idx: Int32Array, wts: Float32Array, k: number,
  gateUpRows: Float32Array, gateUpBias: Float32Array, downRows: Float32Array, downBias: Float32Array, limit = 7, alpha = 1.702): Float32Array {
  const out = new Float32Array(n * H);
  const act = new Float64Array(I);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < k; j++) {
      const e = idx[t * k + j], w = wts[t * k + j];
      for (let q = 0; q < I; q++) {
        let g = gateUpBias[e * 2 * I + 2 * q], u = gateUpBias[e * 2 * I + 2 * q + 1];
        const gr = (e * 2 * I + 2 * q) * H, ur = gr + H;
        for (let h = 0; h < H; h++) {
          g += gateUpRows[gr + h] * x[t * H + h];
          u += gateUpRows[ur + h] * x[t * H + h];
        }
        g = Math.min(g, limit);
        u = Math.min(Math.max(u, -limit), limit);
        act[q] = (u + 1) * g / (1 + Math.exp(-alpha * g));
      }
      for (let h = 0; h < H; h++) {
        let s = downBias[e * H + h];
        const row = (e * H + h) * I;
        for (let q = 0; q < I; q++) s += downRows[row + q] * act[q];
        out[t * H + h] += w * s;
      }
    }
  return out;
}

describe('the CUDA kernels\' layout contract, on the host', () => {
  it('transposed rows, read as the CUDA kernels read them, give the CPU backend\'s moe on transformers\' layout', () => {
    const r = rng('bf16-experts-gpu-layout');
    // H == 2I (gate_up square per expert: only the down shape tells the layouts apart) and H != 2I.
    for (const [E, H, I, k, n] of [[4, 64, 32, 2, 3], [5, 64, 96, 3, 2], [3, 96, 64, 1, 4]]) {
      const gateUp = Tensor.fromBf16(randn(r, E * H * 2 * I, 0.05), [E, H, 2 * I]); // transformers: [E, in, out]
      const down = Tensor.fromBf16(randn(r, E * I * H, 0.05), [E, I, H]);
      const gateUpBias = randn(r, E * 2 * I, 0.1), downBias = randn(r, E * H, 0.1);
      const w = { gateUp, gateUpBias: Tensor.fromF32(gateUpBias, [E, 2 * I]), down, downBias: Tensor.fromF32(downBias, [E, H]) };
      const x = randn(r, n * H, 1);
      const idx = new Int32Array(n * k), wts = new Float32Array(n * k);
      for (let t = 0; t < n; t++)
        for (let j = 0; j < k; j++) {
          idx[t * k + j] = (t * 3 + j * 2 + 1) % E;
          wts[t * k + j] = 1 / k + 0.1 * j;
        }
      const want = Tensor.empty('f32', [n, H]);
      ops.moe(Tensor.fromF32(x, [n, H]), Tensor.fromI32(idx, [n, k]), Tensor.fromF32(wts, [n, k]), w, undefined, want);
      const wantRef = Tensor.empty('f32', [n, H]);
      reference.moe(Tensor.fromF32(x, [n, H]), Tensor.fromI32(idx, [n, k]), Tensor.fromF32(wts, [n, k]), w, undefined, wantRef);

      const gateUpRows = Tensor.empty('bf16', [E, 2 * I, H]);
      transposeExperts(gateUp, gateUpRows);
      const downRows = Tensor.empty('bf16', [E, H, I]);
      transposeExperts(down, downRows);
      const got = gpuLayoutMoe(x, n, H, I, idx, wts, k, values(gateUpRows), gateUpBias, values(downRows), downBias);
      const errCpu = relL2(got, want.read() as Float32Array), errRef = relL2(got, wantRef.read() as Float32Array);
      expect(errRef, `E ${E} H ${H} I ${I}`).toBeLessThan(1e-6); // the same products in double, rounded to f32
      expect(errCpu, `E ${E} H ${H} I ${I}`).toBeLessThan(1e-5);
      // Read without the transpose (transformers' bytes taken as rows), the same code is wrong: the test
      // can tell the layouts apart even where the shapes agree (gate_up at H == 2I).
      if (H === 2 * I) {
        const wrong = gpuLayoutMoe(x, n, H, I, idx, wts, k, values(gateUp), gateUpBias, values(downRows), downBias);
        expect(relL2(wrong, want.read() as Float32Array)).toBeGreaterThan(0.1);
      }
    }
  });
});

// createSyntheticModel(..., { experts: 'bf16' }): the generated MXFP4 experts dequantized exactly and run
// by the bf16 expert kernels (the 20b end-to-end bench's bf16 row on CUDA: bench/e2e.mjs --experts bf16).
describe('synthetic models with bf16 experts', () => {
  it('are the MXFP4 model\'s values: logits equal up to the order of the sums, 4x the expert bytes', async () => {
    const tokens = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % 1000);
    const mx = await createSyntheticModel('tiny', { device: 'cpu', seed: 3 });
    const bf = await createSyntheticModel('tiny', { device: 'cpu', seed: 3, experts: 'bf16' });
    const a = await mx.forward(tokens), b = await bf.forward(tokens);
    const err = relL2(b, a);
    console.log(`synthetic tiny, bf16 experts vs MXFP4: logits rel L2 ${err.toExponential(3)}`);
    expect(err).toBeLessThan(1e-5);
    expect(err).toBeGreaterThan(0); // another kernel ran
    const c = mx.config;
    const mxExperts = c.numLayers * c.numExperts * 3 * c.hiddenSize * c.intermediateSize * (0.5 + 1 / 32);
    expect(bf.info.weightBytes - mx.info.weightBytes).toBe(c.numLayers * c.numExperts * 3 * c.hiddenSize * c.intermediateSize * 2 - mxExperts);
    await mx.dispose();
    await bf.dispose();
    await expect(createSyntheticModel('tiny', { device: 'cpu', experts: 'fp8' as 'bf16' })).rejects.toThrow(/option 'experts' must be 'mxfp4' or 'bf16'/);
  });
});

describe('experts: \'bf16\' on a GPU: options and device choice', () => {
  it('auto runs dense bf16 experts on CUDA (run on an H200) and keeps them on the CPU on HIP (refused there); a named device or MXFP4 is unchanged', () => {
    const cuda = { device: 'cuda:0' };
    expect(autoDeviceForFormat('auto', cuda, 'safetensors', true)).toEqual({ device: 'cuda:0' });
    expect(autoDeviceForFormat('auto', cuda, 'gguf', true)).toEqual({ device: 'cuda:0' });
    const hip = autoDeviceForFormat('auto', { device: 'hip:0' }, 'safetensors', true);
    expect(hip.device).toBe('cpu');
    expect(hip.fallbackReason).toMatch(/^experts 'bf16' on hip: the HIP backend does not run bf16 experts yet.*experts: 'mxfp4'/);
    expect(autoDeviceForFormat('auto', { device: 'hip:0' }, 'gguf', true).fallbackReason).toMatch(/^GGUF on hip/);
    expect(autoDeviceForFormat('auto', { device: 'hip:0' }, 'safetensors', false)).toEqual({ device: 'hip:0' });
    expect(autoDeviceForFormat('cuda', cuda, 'safetensors', true)).toBe(cuda);
    const cpu = { device: 'cpu', fallbackReason: 'CUDA unavailable: x' };
    expect(autoDeviceForFormat('auto', cpu, 'safetensors', true)).toBe(cpu);
  });

  it('tells dense experts from MXFP4 blocks by the checkpoint\'s tensor names', () => {
    expect(hasDenseExperts([{ name: 'model.layers.0.mlp.experts.gate_up_proj' }, { name: 'model.layers.0.mlp.experts.gate_up_proj_bias' }])).toBe(true);
    expect(hasDenseExperts([{ name: 'model.layers.3.mlp.experts.down_proj' }])).toBe(true);
    expect(hasDenseExperts([{ name: 'model.layers.0.mlp.experts.gate_up_proj_blocks' }, { name: 'model.layers.0.mlp.experts.gate_up_proj_scales' },
      { name: 'model.layers.0.mlp.experts.down_proj_bias' }])).toBe(false);
  });

  it('auto loads tiny-a-bf16 with experts: \'bf16\' on CUDA where there is one (else the CPU), and it runs there', async () => {
    const m = await loadModel(fixtureDir('tiny-a-bf16'), { experts: 'bf16' });
    if (CUDA) {
      expect(m.device).toBe('cuda:0');
      expect(m.info.fallbackReason).toBeUndefined();
    } else expect(m.device).toBe('cpu');
    const tokens = readJson<number[]>('tiny-a-bf16', 'tokens.json').slice(0, 8);
    const ref = readF32('tiny-a-bf16', 'logits.f32').subarray(0, tokens.length * m.config.vocabSize);
    expect(relL2(await m.forward(tokens), ref)).toBeLessThan(1e-2);
    await m.dispose();
  });

  it.skipIf(CUDA)('without a CUDA device, naming it is the device error (not a format error)', async () => {
    await expect(loadModel(fixtureDir('tiny-a-bf16'), { device: 'cuda', experts: 'bf16' })).rejects.toThrow(/CUDA is unavailable/);
  });

  // On the GPU host (npx vitest run test/bf16-experts-gpu.test.ts): the experts transposed at upload, the
  // decode GEMVs and the grouped bf16 tile against transformers' logits and the CPU backend.
  it.runIf(CUDA)('on CUDA: tiny-a-bf16 with experts: \'bf16\' against transformers and the CPU', async () => {
    const ref = readF32('tiny-a-bf16', 'logits.f32');
    const tokens = readJson<number[]>('tiny-a-bf16', 'tokens.json');
    const m = await loadModel(fixtureDir('tiny-a-bf16'), { device: 'cuda', experts: 'bf16' });
    expect(m.info.conversions).toEqual(['experts: bf16 [E, in, out] -> [E, out, in] (experts bf16: the GPU kernels\' rows)']);
    expect(m.info.groups.find((x) => x.group === 'experts')!.dtype).toBe('bf16');
    const logits = await m.forward(tokens);
    const cpu = await loadModel(fixtureDir('tiny-a-bf16'), { device: 'cpu', experts: 'bf16' });
    const onCpu = await cpu.forward(tokens);
    await cpu.dispose();
    const vsRef = relL2(logits, ref), vsCpu = relL2(logits, onCpu);
    console.log(`tiny-a-bf16 experts bf16 on CUDA: vs transformers ${vsRef.toExponential(3)}, vs CPU ${vsCpu.toExponential(3)}`);
    expect(vsRef).toBeLessThan(1e-2); // a 16-bit KV cache alone gives 4e-4..3.5e-3 on tiny-a
    expect(vsCpu).toBeLessThan(1e-2);
    expect(argmaxRows(logits, 1024).filter((v, i) => v === argmaxRows(ref, 1024)[i]).length).toBeGreaterThanOrEqual(47);
    await m.dispose();
  });
});

