// The CPU forward pass against HF transformers' float32 logits on the tiny-a fixture.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type GptOssModel } from '../lib/index.js';
import { argmaxRows, fixtureDir, hasNaN, readF32, readJson, relL2 } from './helpers/fixtures.js';

const tokens = readJson<number[]>('tiny-a', 'tokens.json');
const greedy = readJson<number[]>('tiny-a', 'greedy.json');
const reference = readF32('tiny-a', 'logits.f32');
const V = 1024;

describe('gpt-oss forward on the CPU vs transformers (tiny-a)', () => {
  let model: GptOssModel;
  beforeAll(async () => {
    // The exact path, named (it is also the default on every CPU).
    model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', activations: 'f32' });
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('reads the config', () => {
    expect(model.config).toMatchObject({
      vocabSize: 1024, hiddenSize: 256, intermediateSize: 256, numLayers: 4, numExperts: 8, expertsPerToken: 2,
      numHeads: 8, numKvHeads: 2, headDim: 64, slidingWindow: 16, ropeTheta: 150000, swigluLimit: 7,
    });
    expect(model.config.layerTypes).toEqual(['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']);
    expect(model.config.ropeScaling).toEqual({ type: 'yarn', factor: 32, originalMaxPositionEmbeddings: 4096, betaFast: 32, betaSlow: 1, truncate: false });
    expect(model.device).toBe('cpu');
  });

  it('matches the logits of every prompt position (rel L2 < 1e-3, argmax equal everywhere)', async () => {
    const logits = await model.forward(tokens);
    expect(logits.length).toBe(tokens.length * V);
    expect(hasNaN(logits)).toBe(false);
    const err = relL2(logits, reference);
    console.log(`tiny-a CPU logits: rel L2 ${err.toExponential(3)}`);
    expect(err).toBeLessThan(1e-3);
    expect(argmaxRows(logits, V)).toEqual(argmaxRows(reference, V));
  });

  it('continues the prompt greedily exactly as transformers generate() does', async () => {
    const session = model.createSession({ maxContext: 128 });
    let logits = await session.prefill(tokens);
    const out: number[] = [];
    for (let i = 0; i < greedy.length; i++) {
      const next = argmaxRows(logits, V)[0];
      out.push(next);
      logits = await session.step(next);
    }
    expect(out).toEqual(greedy);
    expect(session.length).toBe(tokens.length + greedy.length);
    await session.dispose();
  });

  it('decodes incrementally to the same logits as the full forward', async () => {
    const full = await model.forward(tokens);
    const session = model.createSession({ maxContext: 64 });
    const split = 29; // crosses the 16-token sliding window several times
    const first = await session.prefillAll(tokens.slice(0, split));
    const rows: Float32Array[] = [first];
    for (const t of tokens.slice(split)) rows.push(await session.step(t));
    const incremental = new Float32Array(tokens.length * V);
    let o = 0;
    for (const r of rows) {
      incremental.set(r, o);
      o += r.length;
    }
    expect(relL2(incremental, full)).toBeLessThan(1e-5);
    expect(argmaxRows(incremental, V)).toEqual(argmaxRows(full, V));
    await session.dispose();
  });

  it('samples greedily on the device side to the argmax of the last logits', async () => {
    const session = model.createSession({ maxContext: 64 });
    const logits = await session.prefill(tokens);
    expect(await session.sample({ temperature: 0 }, 0.5)).toBe(argmaxRows(logits, V)[0]);
    expect(await session.sample({ temperature: 0 }, 0.5)).toBe(greedy[0]);
    await session.dispose();
  });

  it('decodes with stepSample (append + device sampling in one call) to the same greedy tokens', async () => {
    const session = model.createSession({ maxContext: 128 });
    await session.append(tokens);
    const out = [await session.sample({ temperature: 0 }, 0.5)];
    while (out.length < greedy.length) out.push(await session.stepSample(out[out.length - 1], { temperature: 0 }, 0.5));
    expect(out).toEqual(greedy);
    expect(session.length).toBe(tokens.length + greedy.length - 1);
    await expect(session.stepSample(1024, { temperature: 0 }, 0.5)).rejects.toThrow(/argument 'token' must be a token id \(an integer in \[0, 1024\)\), got 1024/);
    expect(session.length).toBe(tokens.length + greedy.length - 1);
    await session.dispose();
  });

  it('decodes with stepSampleMany (steps queued back to back) to the same tokens as stepSample, stops, and keeps the length', async () => {
    const session = model.createSession({ maxContext: 128 });
    await session.append(tokens);
    const first = await session.sample({ temperature: 0 }, 0.5);
    expect(first).toBe(greedy[0]);
    const ids = await session.stepSampleMany(first, { temperature: 0 }, new Array(greedy.length - 1).fill(0.5));
    expect([first, ...ids]).toEqual(greedy);
    expect(session.length).toBe(tokens.length + greedy.length - 1);
    // a stop id ends the call after it is drawn; it is not appended
    await session.truncate(tokens.length);
    const stop = greedy[4];
    const cut = greedy.indexOf(stop, 1);
    const partial = await session.stepSampleMany(first, { temperature: 0 }, new Array(10).fill(0.5), [stop]);
    expect(Array.from(partial)).toEqual(greedy.slice(1, cut + 1));
    expect(session.length).toBe(tokens.length + partial.length);
    await expect(session.sample({ temperature: 0 }, 0.5)).rejects.toThrow(/needs a forward pass first/);
    // the session goes on from there as if stepped one by one
    const more = await session.stepSampleMany(stop, { temperature: 0 }, [0.5, 0.5]);
    const check = model.createSession({ maxContext: 128 });
    await check.append([...tokens, ...greedy.slice(0, cut)]);
    const seq = [await check.stepSample(stop, { temperature: 0 }, 0.5)];
    seq.push(await check.stepSample(seq[0], { temperature: 0 }, 0.5));
    expect(Array.from(more)).toEqual(seq);
    await check.dispose();
    await session.dispose();
  });

  it('samples with stepSampleMany exactly as with stepSample for the same uniforms (temperature 1, top-k 50)', async () => {
    const opts = { temperature: 1, topK: 50 };
    const uniforms = Array.from({ length: 12 }, (_, i) => ((i * 0.61803398875) % 1 + 0.013) % 1);
    const a = model.createSession({ maxContext: 128 });
    await a.append(tokens);
    const many = await a.stepSampleMany(greedy[0], opts, uniforms);
    const b = model.createSession({ maxContext: 128 });
    await b.append(tokens);
    const one: number[] = [];
    for (const u of uniforms) one.push(await b.stepSample(one.length ? one[one.length - 1] : greedy[0], opts, u));
    expect(Array.from(many)).toEqual(one);
    expect(a.length).toBe(b.length);
    await a.dispose();
    await b.dispose();
  });

  it('rejects bad stepSampleMany arguments with clear errors and keeps the session usable', async () => {
    const session = model.createSession({ maxContext: 40 });
    await session.append(tokens.slice(0, 30));
    await expect(session.stepSampleMany(1, { temperature: 0 }, [])).rejects.toThrow(/'uniforms' is empty/);
    await expect(session.stepSampleMany(1, { temperature: 0 }, [0.5, 1])).rejects.toThrow(/uniforms\[1\] must be in \[0, 1\)/);
    await expect(session.stepSampleMany(1, { temperature: 0 }, new Array(11).fill(0.5))).rejects.toThrow(
      /30 cached \+ 11 steps exceed maxContext 40/,
    );
    await expect(session.stepSampleMany(5000, { temperature: 0 }, [0.5])).rejects.toThrow(/argument 'token' must be a token id \(an integer in \[0, 1024\)\), got 5000/);
    expect(session.length).toBe(30);
    const ids = await session.stepSampleMany(tokens[30], { temperature: 0 }, new Array(10).fill(0.5));
    expect(ids.length).toBe(10);
    expect(session.length).toBe(40);
    await session.dispose();
  });

  it('truncates the cache and recomputes the same logits', async () => {
    const session = model.createSession({ maxContext: 64 });
    await session.prefill(tokens.slice(0, 40));
    await session.truncate(20);
    expect(session.length).toBe(20);
    const again = await session.prefillAll(tokens.slice(20, 48));
    const ref = reference.subarray(20 * V, 48 * V);
    expect(relL2(again, ref)).toBeLessThan(1e-3);
    await session.dispose();
  });

  it('rejects bad tokens and overflowing contexts with RangeErrors, and keeps working', async () => {
    await expect(model.forward([1, 2, 1024])).rejects.toThrow(RangeError);
    await expect(model.forward([1, -1])).rejects.toThrow(/tokens\[1\] must be a token id \(an integer in \[0, 1024\)\), got -1/);
    const session = model.createSession({ maxContext: 4 });
    await expect(session.prefill([1, 2, 3, 4, 5])).rejects.toThrow(/exceed maxContext 4/);
    expect(session.length).toBe(0);
    await session.prefill([1, 2, 3]);
    expect(session.length).toBe(3);
    await session.dispose();
    expect(() => model.createSession({ maxContext: 0 })).toThrow(RangeError);
    const logits = await model.forward(tokens.slice(0, 4));
    expect(relL2(logits, reference.subarray(0, 4 * V))).toBeLessThan(1e-3);
  });

  it('keeps the event loop free while a forward pass runs', async () => {
    // A long prompt makes the pass take a while; count timer ticks that fire during it.
    const long = Array.from({ length: 1500 }, (_, i) => (i * 7919) % V);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    const logits = await model.forward(long);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(logits.length).toBe(long.length * V);
    expect(elapsed).toBeGreaterThan(20);
    // A blocked loop would fire at most once; a free one keeps firing through the pass.
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 10));
  });
});

describe('activations option: q8 expert activations on the CPU (tiny-a)', () => {
  it('loads with q8, reports it in model.info, and stays close to the exact (f32) logits', async () => {
    const exact = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', activations: 'f32' });
    const q8 = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', activations: 'q8' });
    try {
      expect(exact.info.activations).toBe('f32');
      expect(q8.info.activations).toBe('q8');
      const a = await exact.forward(tokens);
      const b = await q8.forward(tokens);
      // Per position: most rows move by ~2-3% (int8 rounding of every expert input); a few move far
      // where a near-tied router logit picks another expert (tiny-a's random routers have many ties).
      const perRow = Array.from({ length: tokens.length }, (_, t) => relL2(b.subarray(t * V, (t + 1) * V), a.subarray(t * V, (t + 1) * V)));
      const median = [...perRow].sort((x, y) => x - y)[perRow.length >> 1];
      const rowsA = argmaxRows(a, V), rowsB = argmaxRows(b, V);
      const agree = rowsA.filter((t, i) => t === rowsB[i]).length / rowsA.length;
      console.log(`tiny-a q8 vs f32 logits: rel L2 ${relL2(b, a).toExponential(3)}, median per position ${median.toExponential(3)}, argmax agreement ${(agree * 100).toFixed(1)}%`);
      expect(median).toBeGreaterThan(0); // the q8 path ran
      expect(median).toBeLessThan(6e-2);
      expect(agree).toBeGreaterThanOrEqual(0.7);
    } finally {
      await exact.dispose();
      await q8.dispose();
    }
  });

  it('defaults to f32 on every ISA level the machine has; q8 only when the option or GPTOSS_CPU_ACTIVATIONS asks', async () => {
    const { resolveActivations } = await import('../lib/model.js');
    const { cpuInfo, setIsa } = await import('../lib/ops.js');
    const saved = process.env.GPTOSS_CPU_ACTIVATIONS;
    const before = cpuInfo().isa;
    delete process.env.GPTOSS_CPU_ACTIVATIONS;
    try {
      for (const isa of cpuInfo().isas) {
        setIsa(isa);
        expect(resolveActivations(undefined, 'cpu')).toBe('f32');
        expect(resolveActivations('q8', 'cpu')).toBe('q8');
        expect(resolveActivations(undefined, 'cuda:0')).toBe('f32');
        process.env.GPTOSS_CPU_ACTIVATIONS = 'q8';
        expect(resolveActivations(undefined, 'cpu')).toBe('q8');
        expect(resolveActivations('f32', 'cpu')).toBe('f32'); // the option wins over the variable
        delete process.env.GPTOSS_CPU_ACTIVATIONS;
      }
      if (cpuInfo().isas.includes('avx2')) {
        setIsa('avx2'); // where q8 is the faster mode, the default is still the exact path
        const byDefault = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
        try {
          expect(byDefault.info.activations).toBe('f32');
          expect(relL2(await byDefault.forward(tokens), reference)).toBeLessThan(1e-3);
        } finally {
          await byDefault.dispose();
        }
      }
    } finally {
      setIsa(before);
      if (saved === undefined) delete process.env.GPTOSS_CPU_ACTIVATIONS;
      else process.env.GPTOSS_CPU_ACTIVATIONS = saved;
    }
  });

  it('rejects an unknown mode, q8 off the CPU and bf16 off CUDA, naming the option', async () => {
    await expect(loadModel(fixtureDir('tiny-a'), { device: 'cpu', activations: 'q4' as never })).rejects.toThrow(
      /option 'activations' must be 'f32', 'q8' or 'bf16', got q4/);
    await expect(loadModel(fixtureDir('tiny-a'), { device: 'cpu', activations: 'bf16' })).rejects.toThrow(
      /loadModel: option 'activations' 'bf16' is a CUDA mode \(the grouped expert GEMMs of prefill on Hopper\); device cpu multiplies f32 or q8 activations/);
    const { resolveActivations } = await import('../lib/model.js');
    expect(() => resolveActivations('q8', 'cuda:0')).toThrow(/'q8' is a CPU mode/);
    expect(() => resolveActivations('bf16', 'hip:0')).toThrow(/'bf16' is a CUDA mode.*device hip:0 multiplies f32 activations/);
    expect(resolveActivations('bf16', 'cuda:1')).toBe('bf16');
    expect(resolveActivations(undefined, 'cuda:0')).toBe('f32');
    // the environment's default is a CPU setting of f32 or q8 only: bf16 is only ever asked for by the option
    const saved = process.env.GPTOSS_CPU_ACTIVATIONS;
    process.env.GPTOSS_CPU_ACTIVATIONS = 'bf16';
    try {
      expect(() => resolveActivations(undefined, 'cpu')).toThrow(/GPTOSS_CPU_ACTIVATIONS must be 'f32' or 'q8', got bf16/);
      expect(resolveActivations(undefined, 'cuda:0')).toBe('f32');
    } finally {
      if (saved === undefined) delete process.env.GPTOSS_CPU_ACTIVATIONS;
      else process.env.GPTOSS_CPU_ACTIVATIONS = saved;
    }
  });
});

describe('kvCache option: the KV cache dtype is a load option, checked against the device', () => {
  it('CPU: f32, in model.info; a 16-bit cache is a RangeError naming the option, never ignored', async () => {
    const m = await loadModel(fixtureDir('tiny-a'), { device: 'cpu', kvCache: 'f32' });
    try {
      expect(m.info.kvCache).toBe('f32');
    } finally {
      await m.dispose();
    }
    for (const kvCache of ['f16', 'bf16', 'f32k-f16v'] as const)
      await expect(loadModel(fixtureDir('tiny-a'), { device: 'cpu', kvCache })).rejects.toThrow(
        new RegExp(`loadModel: option 'kvCache' '${kvCache}' is not available on device cpu`));
    await expect(loadModel(fixtureDir('tiny-a'), { device: 'cpu', kvCache: 'fp8' as never })).rejects.toThrow(
      /loadModel: option 'kvCache' must be 'f16', 'bf16', 'f32' or 'f32k-f16v', got 'fp8'/);
    await expect(loadModel(fixtureDir('tiny-a'), { device: 'cpu', kvCache: 16 as never })).rejects.toThrow(RangeError);
  });

  it('the native side refuses what the backend cannot keep (not only the TypeScript check)', async () => {
    const { native } = await import('../lib/native.js');
    const { syntheticConfig } = await import('../lib/synthetic.js');
    const config = syntheticConfig('tiny', { layers: 1 });
    await expect(native.NativeModel.synthetic({ config, seed: 1, device: 'cpu', kvCache: 'bf16' } as never)).rejects.toThrow(
      /kvCache 'bf16' is not available on device cpu \(its attention kernels take 'f32'\)/);
    // argument errors throw at the call, before any work is queued
    expect(() => native.NativeModel.synthetic({ config, seed: 1, device: 'cpu', kvCache: 'f8' } as never)).toThrow(
      /spec\.kvCache must be 'f16', 'bf16', 'f32' or 'f32k-f16v', got 'f8'/);
    await expect(native.NativeModel.synthetic({ config, seed: 1, device: 'cpu', kvCache: 'f32k-f16v' } as never)).rejects.toThrow(
      /kvCache 'f32k-f16v' is not available on device cpu \(its attention kernels take 'f32'\)/);
    const ok = await native.NativeModel.synthetic({ config, seed: 1, device: 'cpu' } as never);
    expect(ok.info().kvCache).toBe('f32');
    ok.dispose();
  });

  it('GPU devices: f32k-f16v by default, GPTOSS_CUDA_KV_CACHE as the default (named in its errors), the option first', async () => {
    const { resolveKvCache } = await import('../lib/model.js');
    const saved = process.env.GPTOSS_CUDA_KV_CACHE;
    try {
      delete process.env.GPTOSS_CUDA_KV_CACHE;
      expect(resolveKvCache(undefined, 'cuda:0')).toBe('f32k-f16v');
      expect(resolveKvCache(undefined, 'hip:0')).toBe('f32k-f16v');
      expect(resolveKvCache('bf16', 'cuda:0')).toBe('bf16');
      expect(resolveKvCache(undefined, 'cpu')).toBe('f32');
      process.env.GPTOSS_CUDA_KV_CACHE = 'f32';
      expect(resolveKvCache(undefined, 'cuda:1')).toBe('f32');
      expect(resolveKvCache('f16', 'cuda:1')).toBe('f16');
      expect(resolveKvCache('f32k-f16v', 'cuda:1')).toBe('f32k-f16v');
      process.env.GPTOSS_CUDA_KV_CACHE = 'f32k-f16v';
      expect(resolveKvCache(undefined, 'cuda:0')).toBe('f32k-f16v');
      expect(() => resolveKvCache(undefined, 'cpu')).not.toThrow();
      expect(resolveKvCache(undefined, 'cpu')).toBe('f32'); // a CUDA variable: the CPU's cache stays f32
      process.env.GPTOSS_CUDA_KV_CACHE = 'half';
      expect(() => resolveKvCache(undefined, 'cuda:0')).toThrow(/GPTOSS_CUDA_KV_CACHE must be 'f16', 'bf16', 'f32' or 'f32k-f16v', got 'half'/);
      expect(() => resolveKvCache('f32-f16', 'cuda:0')).toThrow(/option 'kvCache' must be .* got 'f32-f16'/);
      expect(() => resolveKvCache('q8', 'cuda:0', 'createSyntheticModel')).toThrow(/createSyntheticModel: option 'kvCache' must be/);
    } finally {
      if (saved === undefined) delete process.env.GPTOSS_CUDA_KV_CACHE;
      else process.env.GPTOSS_CUDA_KV_CACHE = saved;
    }
  });
});

describe('GPTOSS_CPU_KV_ROUND: the CPU emulation of a 16-bit cache (bench/kv-fidelity.mjs)', () => {
  it('rounds what the CPU stores: tiny-a moves from transformers as a 16-bit cache would, f16 far less than bf16', async () => {
    const { cpuLogits } = await import('../scripts/kv-checkpoints.mjs');
    const dir = fixtureDir('tiny-a');
    const want = readF32('tiny-a', 'logits.f32');
    const errs: Record<string, number> = {};
    for (const round of [null, 'f16', 'bf16', 'f32k-f16v'] as const) errs[round ?? 'f32'] = relL2(cpuLogits(dir, tokens, V, round), want);
    console.log(`tiny-a vs transformers by emulated cache: ${JSON.stringify(Object.fromEntries(Object.entries(errs).map(([k, e]) => [k, e.toExponential(2)])))}`);
    expect(errs.f32).toBeLessThan(1e-5);
    expect(errs.f16).toBeGreaterThan(2 * errs.f32);  // the rounding ran
    expect(errs.f16).toBeLessThan(2e-3);
    expect(errs.bf16).toBeGreaterThan(3 * errs.f16);   // 3 fewer mantissa bits
    expect(errs['f32k-f16v']).toBeGreaterThan(errs.f32);  // V rounded
    expect(errs['f32k-f16v']).toBeLessThan(errs.f16 + 1e-6);
    expect(errs['f32k-f16v']).toBeLessThan(1e-2);
  });

  it("kvCache 'f32k-f16v' keeps the deep checkpoints within 1e-2 of the exact cache, where f16 and bf16 miss (issue 12 item 6)", async () => {
    const { KV_CHECKPOINTS, cpuLogits, fidelityToExact, kvCheckpoint, kvPrompt, passesExactGate } = await import('../scripts/kv-checkpoints.mjs');
    const root = mkdtempSync(join(tmpdir(), 'gptoss-kv-'));
    try {
      const lines: string[] = [];
      const errs: Record<string, Record<string, number>> = {};
      for (const spec of KV_CHECKPOINTS) {
        const dir = kvCheckpoint(root, spec);
        const vocab = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
        const prompt = kvPrompt(vocab);
        const exact = cpuLogits(dir, prompt, vocab, null);
        errs[spec.name] = {};
        // f16 on deep-a only: the gate has to be able to fail (a rounded K tips a router choice there)
        for (const round of spec.name === 'deep-a' ? ['f32k-f16v', 'f16'] as const : ['f32k-f16v'] as const) {
          const got = cpuLogits(dir, prompt, vocab, round);
          expect(hasNaN(got)).toBe(false);
          errs[spec.name][round] = relL2(got, exact);
          // gpu-model-check.mjs's gate on the GPU's default cache, on the emulated one: f32k-f16v passes, f16 misses
          const f = fidelityToExact(got, exact, vocab);
          expect(f.relL2).toBeCloseTo(errs[spec.name][round], 6);
          expect(passesExactGate(f)).toBe(round === 'f32k-f16v');
        }
        lines.push(`${spec.name}: ${Object.entries(errs[spec.name]).map(([k, e]) => `${k} ${e.toExponential(2)}`).join(', ')}`);
      }
      console.log(`logits rel L2 against the exact cache by emulated cache type: ${lines.join('; ')}`);
      for (const spec of KV_CHECKPOINTS) {
        expect(errs[spec.name]['f32k-f16v']).toBeGreaterThan(0);  // V was rounded
        expect(errs[spec.name]['f32k-f16v']).toBeLessThan(1e-2);
      }
      expect(errs['deep-a'].f16).toBeGreaterThan(1e-2);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('fidelityToExact and the default cache\'s gate: rel L2 < 1e-2, no NaN, argmax at >= 97% of the rows', async () => {
    const { fidelityToExact, passesExactGate } = await import('../scripts/kv-checkpoints.mjs');
    const vocab = 4, rows = 80;
    const exact = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) exact.set([10, 9.99, 0, -1], r * vocab); // near-tied rows
    const flip = (n: number) => {
      const got = exact.slice();
      for (let r = 0; r < n; r++) got.set([9.99, 10, 0, -1], r * vocab);
      return fidelityToExact(got, exact, vocab);
    };
    expect(flip(0)).toEqual({ relL2: 0, nan: false, rows, agree: rows });
    expect(flip(2)).toMatchObject({ agree: 78 });
    expect(flip(2).relL2).toBeLessThan(1e-2);
    expect(passesExactGate(flip(2))).toBe(true);
    expect(passesExactGate(flip(3))).toBe(false); // 77/80 < 97%, though rel L2 is ~1e-4
    expect(flip(3).relL2).toBeLessThan(1e-3);
    const nan = exact.slice();
    nan[7] = Number.NaN;
    expect(fidelityToExact(nan, exact, vocab).nan).toBe(true);
    expect(passesExactGate(fidelityToExact(nan, exact, vocab))).toBe(false);
    const far = exact.map((x) => x * 1.02); // every argmax kept, rel L2 2e-2
    expect(fidelityToExact(far, exact, vocab)).toMatchObject({ agree: rows });
    expect(passesExactGate(fidelityToExact(far, exact, vocab))).toBe(false);
    expect(passesExactGate(fidelityToExact(exact.map((x) => x * 1.009), exact, vocab))).toBe(true);
    expect(() => fidelityToExact(exact.subarray(4), exact, vocab)).toThrow(/fidelityToExact: 316 and 320 logits are not the same whole rows of 4/);
  });

  it('names the variable on a bad value', async () => {
    const { cpuLogits } = await import('../scripts/kv-checkpoints.mjs');
    expect(() => cpuLogits(fixtureDir('tiny-a'), tokens, V, 'f8' as never)).toThrow(/GPTOSS_CPU_KV_ROUND must be 'f16', 'bf16', 'f32', 'f32k-f16v', 'f16-k' or 'f16-v'/);
  });
});
