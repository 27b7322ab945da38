// Logit bias and presence / frequency penalties (options.logitBias, presencePenalty, frequencyPenalty;
// Session.sample / stepSample's bias; BatchItem.bias): each draw is the host sampler's draw from the
// logits plus the bias OpenAI defines, on the tiny-a fixture, through generate(), the batched engine
// (plain and pipelined decode) and the session backend.
import { describe, expect, it } from 'vitest';
import { createRng, generate, sampleFromLogits, type GenerationResult, type SampleOptions } from '../lib/index.js';
import { SessionBackend } from '../lib/engine/session-backend.js';
import { drawBias, resolveBiasPlan } from '../lib/penalties.js';
import { readJson } from './helpers/fixtures.js';
import { useCpuModel } from './helpers/engine.js';

const prompt = readJson<number[]>('tiny-a', 'tokens.json');
const vocab = 1024;

function biased(logits: Float32Array, bias: { ids: Int32Array; deltas: Float32Array } | undefined): Float32Array {
  const out = Float32Array.from(logits);
  if (bias) bias.ids.forEach((id, j) => (out[id] = out[id]! + bias.deltas[j]!));
  return out;
}

describe('logit bias and penalties on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  it('Session.sample / stepSample draw from the logits plus the bias; logprobs and a later draw see the row as it was', async () => {
    const session = tiny.model.createSession({ maxContext: 64 });
    const logits = await session.prefill(prompt.slice(0, 20));
    const rand = createRng(99);
    const ids = Int32Array.from({ length: 60 }, () => Math.floor(rand.nextUniform() * vocab));
    const deltas = Float32Array.from({ length: 60 }, () => (rand.nextUniform() - 0.5) * 10);
    const bias = { ids, deltas };
    for (const [options, u] of [[{ temperature: 0 }, 0.3], [{ temperature: 1 }, 0.41], [{ temperature: 0.7, topP: 0.9 }, 0.77], [{ temperature: 1.2, topK: 30 }, 0.05]] as [SampleOptions, number][]) {
      expect(await session.sample(options, u, bias)).toBe(sampleFromLogits(biased(logits, bias), options, u));
      expect(await session.sample(options, u)).toBe(sampleFromLogits(logits, options, u)); // the raw row again
    }
    // +100 forces a token; the logprobs stay the model's
    const forced = await session.sample({ temperature: 0 }, 0.5, { ids: Int32Array.of(7), deltas: Float32Array.of(100) });
    expect(forced).toBe(7);
    const lp = await session.logprobs(7, 1);
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, x) => a + Math.exp(x - m), 0));
    expect(Math.abs(lp.logprob - (logits[7]! - lse))).toBeLessThan(1e-5);
    // stepSample: the same on the next position
    const next = await session.stepSample(forced, { temperature: 1 }, 0.6, bias);
    const session2 = tiny.model.createSession({ maxContext: 64 });
    await session2.prefill(prompt.slice(0, 20));
    const logits2 = await session2.step(forced);
    expect(next).toBe(sampleFromLogits(biased(logits2, bias), { temperature: 1 }, 0.6));
    // bad biases are refused, naming the argument
    await expect(session.sample({ temperature: 0 }, 0.5, { ids: Int32Array.of(vocab), deltas: Float32Array.of(1) })).rejects.toThrow(/bias'\.ids\[0\] = 1024 is outside the vocabulary/);
    await expect(session.sample({ temperature: 0 }, 0.5, { ids: Int32Array.of(1, 2), deltas: Float32Array.of(1) })).rejects.toThrow(/differ in length/);
    await expect(session.sample({ temperature: 0 }, 0.5, { ids: Int32Array.of(1), deltas: Float32Array.of(NaN) })).rejects.toThrow(/not finite/);
    await expect(session.sample({ temperature: 0 }, 0.5, { ids: [1], deltas: [1] } as never)).rejects.toThrow(TypeError);
    await session.dispose();
    await session2.dispose();
  });

  it('generate(): logitBias forces or bans tokens; penalties follow the tokens drawn so far (a host reference run step by step)', async () => {
    const plain = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 8, stopTokens: [] }).result;
    const forced = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 8, stopTokens: [], logitBias: { 5: 100 } }).result;
    expect(forced.tokens).toEqual(Array(8).fill(5));
    const banned = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 8, stopTokens: [], logitBias: { [plain.tokens[0]!]: -100 } }).result;
    expect(banned.tokens).not.toContain(plain.tokens[0]);

    for (const opts of [
      { temperature: 0, frequencyPenalty: 2 },
      { temperature: 0, presencePenalty: 2, logitBias: { '3': 1.5, 9: -2 } },
      { temperature: 1, seed: 4, frequencyPenalty: 0.8, presencePenalty: -0.5 },
      { temperature: 0.8, topP: 0.9, seed: 5, presencePenalty: 1.2, logprobs: 2 },
    ]) {
      const r = await generate(tiny.model, prompt, { maxTokens: 20, stopTokens: [], ...opts }).result;
      // the reference: the session's logits, the OpenAI formula in TypeScript, the host sampler, the same uniforms
      const plan = resolveBiasPlan(opts, vocab, 'test');
      const rng = createRng('seed' in opts ? opts.seed : r.seed);
      const session = tiny.model.createSession({ maxContext: prompt.length + 21 });
      let logits = await session.prefill(prompt);
      const want: number[] = [];
      for (let j = 0; j < 20; j++) {
        const id = sampleFromLogits(biased(logits, drawBias(plan, want)), opts, rng.nextUniform());
        want.push(id);
        if (j < 19) logits = await session.step(id);
      }
      await session.dispose();
      expect(r.tokens, JSON.stringify(opts)).toEqual(want);
    }
    // a token pushed up by 12 wins every greedy draw; the penalties (2 + 2 a repeat) make it give way
    const pushed = { temperature: 0, maxTokens: 20, stopTokens: [], logitBias: { 5: 12 } };
    const unpenalised = await generate(tiny.model, prompt, pushed).result;
    const penalised = await generate(tiny.model, prompt, { ...pushed, frequencyPenalty: 2, presencePenalty: 2 }).result;
    const fives = (r: GenerationResult): number => r.tokens.filter((t) => t === 5).length;
    expect(fives(unpenalised)).toBe(20);
    expect(fives(penalised)).toBeGreaterThan(0);
    expect(fives(penalised)).toBeLessThan(10);
  });

  it('bad options are refused before anything runs, naming them', () => {
    expect(() => generate(tiny.model, prompt, { logitBias: { '-1': 1 } })).toThrow(/options.logitBias key '-1' is not a token id/);
    expect(() => generate(tiny.model, prompt, { logitBias: { 1024: 1 } })).toThrow(RangeError);
    expect(() => generate(tiny.model, prompt, { logitBias: { 5: 101 } })).toThrow(/options.logitBias\[5\] must be in \[-100, 100\]/);
    expect(() => generate(tiny.model, prompt, { logitBias: { 5: '1' as unknown as number } })).toThrow(TypeError);
    expect(() => generate(tiny.model, prompt, { logitBias: [1] as unknown as Record<number, number> })).toThrow(/must be an object/);
    expect(() => generate(tiny.model, prompt, { presencePenalty: 2.5 })).toThrow(/options.presencePenalty must be in \[-2, 2\]/);
    expect(() => generate(tiny.model, prompt, { frequencyPenalty: NaN })).toThrow(TypeError);
  });

  it('the engine (native batch plain and pipelined, session backend) draws as generate() does; biased and plain requests side by side', async () => {
    const requests = [
      { prompt: prompt.slice(0, 9), options: { temperature: 0, frequencyPenalty: 1.5 } },
      { prompt: prompt.slice(0, 30), options: { temperature: 1, seed: 5 } }, // plain: pipelined when alone
      { prompt: prompt.slice(5, 40), options: { temperature: 0.9, topP: 0.9, seed: 6, presencePenalty: 2, logitBias: { 11: 3 } } },
      { prompt: prompt.slice(0, 48), options: { temperature: 0, logitBias: { 5: 100 }, logprobs: 1 } },
    ];
    const want = await Promise.all(requests.map((q) => generate(tiny.model, q.prompt, { maxTokens: 14, stopTokens: [], ...q.options }).result));
    expect(want[3]!.tokens).toEqual(Array(14).fill(5));
    for (const make of [
      () => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16 }),
      () => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16, pipelineDecode: true }),
      () => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16, backend: 'session' }),
    ]) {
      const engine = make();
      const got: GenerationResult[] = await Promise.all(requests.map((q) => engine.generate(q.prompt, { maxTokens: 14, stopTokens: [], ...q.options }).result));
      await engine.close();
      got.forEach((r, i) => expect(r.tokens, `request ${i}`).toEqual(want[i]!.tokens));
    }
  });

  it('batch items: bias needs sample and cannot go with next; bad biases name the item', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 8, blockSize: 16, maxSequences: 2, pipelineDecode: true });
    const s = new SessionBackend(tiny.model, { kvBlocks: 8 });
    try {
      const tokens = Int32Array.from(prompt.slice(0, 4));
      const sample = { options: { temperature: 0 }, uniform: 0.5 };
      const bias = { ids: Int32Array.of(9), deltas: Float32Array.of(100) };
      for (const backend of [b, s]) {
        const seq = backend.open(32)!;
        await expect(backend.step([{ seq, tokens, sample: null, bias }])).rejects.toThrow(/bias is set but \.sample is null/);
        expect((await backend.step([{ seq, tokens, sample, bias }]))[0]).toBe(9);
        backend.close(seq);
      }
      const seq = b.open(32)!;
      await expect(b.step([{ seq, tokens, sample, bias, next: 0.5 }])).rejects.toThrow(/bias and \.next together/);
      await expect(b.step([{ seq, tokens, sample, bias: { ids: Int32Array.of(-1), deltas: Float32Array.of(1) } }])).rejects.toThrow(/items\[0\]\.bias\.ids\[0\] = -1 is outside/);
      b.close(seq);
    } finally {
      await b.dispose();
      await s.dispose();
    }
  });
});
