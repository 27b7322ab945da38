// The engine (continuous batching over SessionBackend) against generate(): same seeds, same tokens,
// whatever the mix of lengths and the order in which requests join and leave. tiny-a on the CPU.
import { describe, expect, it } from 'vitest';
import { generate, type GenerationResult } from '../../lib/index.js';
import { QueueFullError, ContextLengthError, EngineClosedError } from '../../lib/engine/errors.js';
import { useCpuModel } from '../helpers/engine.js';
import { rng } from '../helpers/rng.js';

const prng = (seed: number): (() => number) => {
  const r = rng(seed, 'engine');
  return () => r.nextFloat();
};

describe('engine on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  const randomPrompt = (rand: () => number, n: number): number[] => Array.from({ length: n }, () => Math.floor(rand() * 1024));

  // the native batched step (the CPU default), the same pipelined (pipelineDecode) and SessionBackend
  // (the reference) against generate()
  it.each(['native', 'session', 'pipelined'] as const)('equals generate() for the same seeds, greedy and sampled, across mixed lengths and join/leave orders (%s backend)', async (kind) => {
    const rand = prng(11);
    const backend = kind === 'pipelined' ? 'native' : kind;
    const engine = tiny.model.createEngine({ backend, pipelineDecode: kind === 'pipelined', maxSequences: 3, maxBatchTokens: 24, kvBlocks: 64, blockSize: 8, maxContext: 256 });
    const jobs = Array.from({ length: 9 }, (_, i) => ({
      prompt: randomPrompt(rand, [3, 70, 17, 1, 45, 9, 120, 30, 5][i]!),
      options: {
        temperature: i % 3 === 0 ? 0 : [0.8, 1.3][i % 2]!,
        topP: i % 4 === 1 ? 0.9 : 1,
        seed: 100 + i,
        maxTokens: [12, 5, 20, 8, 16, 3, 10, 7, 14][i]!,
        stopTokens: [] as number[],
      },
    }));
    // a stop token that greedy job 3 will meet: its 4th greedy token
    const ref3 = await generate(tiny.model, jobs[3]!.prompt, { ...jobs[3]!.options }).result;
    jobs[3]!.options.stopTokens = [ref3.tokens[3]!];
    const refs = await Promise.all(jobs.map((j) => generate(tiny.model, j.prompt, j.options).result));
    expect(refs[3]!.finishReason).toBe('stop');

    // join in waves: three at once, then one each time an earlier stream has produced a few tokens
    const results: Promise<GenerationResult>[] = [];
    const tokensSeen: number[] = [];
    const start = (i: number): void => {
      const stream = engine.generate(jobs[i]!.prompt, jobs[i]!.options);
      results[i] = (async () => {
        let n = 0;
        for await (const e of stream) if (e.type === 'token') tokensSeen[i] = ++n;
        return stream.result;
      })();
    };
    for (const i of [0, 1, 2]) start(i);
    for (let i = 3; i < jobs.length; i++) {
      while ((tokensSeen[i - 3] ?? 0) < 2 && !(await Promise.race([results[i - 3]!.then(() => true), new Promise((r) => setImmediate(() => r(false)))]))) {
        /* wait for the earlier stream to be under way */
      }
      start(i);
    }
    const got = await Promise.all(results);
    for (const [i, r] of got.entries()) {
      expect(r.tokens, `job ${i}`).toEqual(refs[i]!.tokens);
      expect(r.finishReason, `job ${i}`).toBe(refs[i]!.finishReason);
      expect(r.text).toBe(refs[i]!.text);
      expect(r.usage).toEqual({ promptTokens: jobs[i]!.prompt.length, completionTokens: refs[i]!.tokens.length, cachedPromptTokens: 0 });
    }
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 64, finished: 9 });
    await engine.close();
  });

  it.each([false, true])('requests sharing a prompt prefix: later ones reuse its cached KV blocks (usage.cachedPromptTokens) and still equal generate() (pipelineDecode %s)', async (pipelineDecode) => {
    const rand = prng(23);
    const engine = tiny.model.createEngine({ backend: 'native', pipelineDecode, maxSequences: 2, maxBatchTokens: 32, kvBlocks: 48, blockSize: 8, maxContext: 128 });
    const system = randomPrompt(rand, 37); // 4 whole blocks of 8, and 5 tokens
    const jobs = [0, 1, 2].map((i) => ({ prompt: [...system, ...randomPrompt(rand, 6 + 5 * i)], options: { temperature: i === 1 ? 0 : 1, seed: 40 + i, maxTokens: 9, stopTokens: [] as number[] } }));
    const first = await engine.generate(jobs[0]!.prompt, jobs[0]!.options).result;
    expect(first.usage.cachedPromptTokens).toBe(0);
    // the next two run together, both finding the first's blocks
    const rest = await Promise.all(jobs.slice(1).map((j) => engine.generate(j.prompt, j.options).result));
    for (const r of rest) expect(r.usage.cachedPromptTokens).toBe(32);
    const refs = await Promise.all(jobs.map((j) => generate(tiny.model, j.prompt, j.options).result));
    expect([first, ...rest].map((r) => r.tokens)).toEqual(refs.map((r) => r.tokens));
    expect(engine.stats().freeBlocks).toBe(48);
    await engine.close();
  });

  it.each([false, true])('aborted requests leave at once (queued or running) with a prefix of generate() tokens; the pool comes back (pipelineDecode %s)', async (pipelineDecode) => {
    const rand = prng(5);
    const engine = tiny.model.createEngine({ pipelineDecode, maxSequences: 2, maxBatchTokens: 16, kvBlocks: 32, blockSize: 16 });
    const jobs = Array.from({ length: 6 }, (_, i) => ({ prompt: randomPrompt(rand, 10 + 7 * i), options: { temperature: 1, seed: i, maxTokens: 30, stopTokens: [] } }));
    const streams = jobs.map((j) => engine.generate(j.prompt, j.options));
    streams[5]!.abort(); // still queued
    const cut = [1, 3];
    const results = await Promise.all(
      streams.map(async (s, i) => {
        let n = 0;
        for await (const e of s) if (e.type === 'token' && cut.includes(i) && ++n === 4) s.abort();
        return s.result;
      }),
    );
    for (const [i, r] of results.entries()) {
      const ref = await generate(tiny.model, jobs[i]!.prompt, jobs[i]!.options).result;
      if (i === 5) expect(r.tokens).toEqual([]);
      if (cut.includes(i) || i === 5) {
        expect(r.finishReason).toBe('abort');
        expect(r.tokens.length).toBeLessThan(30);
        expect(ref.tokens.slice(0, r.tokens.length)).toEqual(r.tokens);
      } else expect(r.tokens).toEqual(ref.tokens);
    }
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 32 });
    await engine.close();
  });

  it('chunked prefill: a long prompt does not stall a running stream', async () => {
    const rand = prng(9);
    const engine = tiny.model.createEngine({ maxSequences: 2, maxBatchTokens: 16, maxContext: 512 });
    const a = engine.generate(randomPrompt(rand, 4), { temperature: 1, seed: 1, maxTokens: 200, stopTokens: [] });
    const aTokens: number[] = [];
    const consumeA = (async () => {
      for await (const e of a) if (e.type === 'token') aTokens.push(performance.now());
    })();
    while (aTokens.length < 3) await new Promise((r) => setImmediate(r));
    const stepsBefore = engine.stats().steps;
    const long = 300; // 15 tokens of prefill a step beside A's decode token: 20 steps
    const b = engine.generate(randomPrompt(rand, long), { temperature: 0, maxTokens: 1, stopTokens: [] });
    const countAtB = aTokens.length;
    let aDuringB = 0;
    for await (const e of b) if (e.type === 'token') aDuringB = aTokens.length - countAtB;
    expect(engine.stats().steps - stepsBefore).toBeGreaterThanOrEqual(Math.ceil(long / 15));
    expect(aDuringB).toBeGreaterThanOrEqual(Math.ceil(long / 15) - 1);
    a.abort();
    await consumeA;
    await engine.close();
  });

  it.each([false, true])('refuses what cannot run: context too long, queue full, closed; close() aborts what is left at the deadline (pipelineDecode %s)', async (pipelineDecode) => {
    const engine = tiny.model.createEngine({ pipelineDecode, maxSequences: 1, maxBatchTokens: 8, kvBlocks: 4, blockSize: 16, maxQueue: 1 });
    expect(engine.maxContext).toBe(64); // the pool holds 64 tokens
    expect(() => engine.generate(Array(64).fill(1), { maxTokens: 1 })).toThrow(ContextLengthError);
    expect(() => engine.generate(Array(64).fill(1), { maxTokens: 1 })).toThrow(/maximum context length is 64 tokens; the prompt has 64 tokens/);
    const a = engine.generate([1, 2, 3], { maxTokens: 1000, temperature: 1, seed: 1, stopTokens: [] });
    const b = engine.generate([1, 2, 3], { maxTokens: 5, stopTokens: [] }); // waits: one sequence at a time
    expect(() => engine.generate([1], { maxTokens: 1 })).toThrow(QueueFullError);
    const ra = await a.result;
    expect(ra.finishReason).toBe('context'); // 64-token pool, not maxTokens
    expect(ra.tokens.length).toBe(64 - 3 - 1 + 1);
    expect((await b.result).tokens).toHaveLength(5);
    const c = engine.generate([1, 2, 3], { maxTokens: 50, temperature: 1, seed: 2, stopTokens: [] });
    await engine.close(0);
    expect((await c.result).finishReason).toBe('abort');
    expect(() => engine.generate([1], {})).toThrow(EngineClosedError);
  });
});
