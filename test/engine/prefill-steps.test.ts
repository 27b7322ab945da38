// maxPrefillTokens: when no sequence is decoding, a step carries up to maxPrefillTokens of prompt
// instead of maxBatchTokens (a long prompt alone goes through in fewer, larger steps); the first decode
// token brings the budget back to maxBatchTokens. The schedule is read off a recording StepBackend
// around the real native batched step (tiny-a on the CPU); the tokens must not depend on it.
import { describe, expect, it } from 'vitest';
import { generate, type GenerationResult } from '../../lib/index.js';
import type { BatchItem, StepBackend, StepLogprobs } from '../../lib/engine/backend.js';
import type { NativeBatchBackend } from '../../lib/engine/native-backend.js';
import { DEFAULT_MAX_PREFILL_TOKENS, maxPrefillTokensDefault, type EngineOptions } from '../../lib/engine/scheduler.js';
import { useCpuModel } from '../helpers/engine.js';
import { rng } from '../helpers/rng.js';

/** One step as the backend saw it. */
interface StepRecord {
  /** Tokens in the step. */
  tokens: number;
  /** Items of sequences that had their whole prompt in the cache already (decode tokens). */
  decoding: number;
  /** Prompt tokens per prefilling item, in item order. */
  chunks: number[];
}

/** A StepBackend that forwards to a native batch backend and records each step's shape. */
class RecordingBackend implements StepBackend {
  readonly steps: StepRecord[] = [];
  readonly #inner: NativeBatchBackend;
  readonly #promptLength = new Map<number, number>();
  readonly #held = new Map<number, number>();

  constructor(inner: NativeBatchBackend) {
    this.#inner = inner;
  }
  get blockSize(): number {
    return this.#inner.blockSize;
  }
  get totalBlocks(): number {
    return this.#inner.totalBlocks;
  }
  freeBlocks(): number {
    return this.#inner.freeBlocks();
  }
  open(maxTokens: number, prompt?: ArrayLike<number>): number | null {
    const seq = this.#inner.open(maxTokens, prompt);
    if (seq !== null) {
      this.#promptLength.set(seq, prompt?.length ?? 0);
      this.#held.set(seq, this.#inner.length(seq));
    }
    return seq;
  }
  length(seq: number): number {
    return this.#inner.length(seq);
  }
  close(seq: number): void {
    this.#inner.close(seq);
  }
  async step(items: BatchItem[]): Promise<Int32Array> {
    const record: StepRecord = { tokens: 0, decoding: 0, chunks: [] };
    for (const item of items) {
      record.tokens += item.tokens.length;
      if (this.#held.get(item.seq)! >= this.#promptLength.get(item.seq)!) record.decoding++;
      else record.chunks.push(item.tokens.length);
    }
    this.steps.push(record);
    const ids = await this.#inner.step(items);
    for (const item of items) this.#held.set(item.seq, this.#held.get(item.seq)! + item.tokens.length);
    return ids;
  }
  stepLogprobs(): Promise<StepLogprobs> {
    throw new Error('RecordingBackend: no logprobs in these tests');
  }
  dispose(): Promise<void> {
    return this.#inner.dispose();
  }
}

describe('engine maxPrefillTokens (tiny-a, CPU)', () => {
  const tiny = useCpuModel('tiny-a');
  const prng = (seed: number): (() => number) => {
    const r = rng(seed, 'prefill-steps');
    return () => r.nextFloat();
  };
  const randomPrompt = (rand: () => number, n: number): number[] => Array.from({ length: n }, () => Math.floor(rand() * 1024));
  const recording = (kvBlocks: number): RecordingBackend => new RecordingBackend(tiny.model.createBatchBackend({ kvBlocks, blockSize: 16, maxSequences: 4 }));

  it('takes the large chunk only while nothing decodes: a prompt alone in maxPrefillTokens steps, beside a decoding stream in maxBatchTokens steps', async () => {
    const rand = prng(1);
    const backend = recording(80);
    const engine = tiny.model.createEngine({ backend, maxSequences: 2, maxBatchTokens: 16, maxPrefillTokens: 128 });
    expect(engine.maxPrefillTokens).toBe(128);

    // alone: 300 prompt tokens in steps of 128, 128, 44 (the last draws the first token), then 2 decode steps
    const alone = await engine.generate(randomPrompt(rand, 300), { temperature: 0, maxTokens: 3, stopTokens: [] }).result;
    expect(alone.tokens).toHaveLength(3);
    expect(backend.steps).toEqual([
      { tokens: 128, decoding: 0, chunks: [128] },
      { tokens: 128, decoding: 0, chunks: [128] },
      { tokens: 44, decoding: 0, chunks: [44] },
      { tokens: 1, decoding: 1, chunks: [] },
      { tokens: 1, decoding: 1, chunks: [] },
    ]);
    backend.steps.length = 0;
    await engine.idle(); // the loop has ended: A's request below starts a step alone

    // A (4-token prompt, 5 tokens) starts alone; B (300 tokens) joins after A's first step. While A
    // decodes (its tokens 2-5) B gets the 15 tokens maxBatchTokens leaves; once A is done, 128 again.
    const a = engine.generate(randomPrompt(rand, 4), { temperature: 1, seed: 3, maxTokens: 5, stopTokens: [] });
    const b = engine.generate(randomPrompt(rand, 300), { temperature: 1, seed: 4, maxTokens: 2, stopTokens: [] });
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect([ra.tokens.length, rb.tokens.length]).toEqual([5, 2]);
    const decodingStep = { tokens: 16, decoding: 1, chunks: [15] };
    expect(backend.steps).toEqual([
      { tokens: 4, decoding: 0, chunks: [4] },
      decodingStep,
      decodingStep,
      decodingStep,
      decodingStep,
      { tokens: 128, decoding: 0, chunks: [128] },
      { tokens: 112, decoding: 0, chunks: [112] },
      { tokens: 1, decoding: 1, chunks: [] },
    ]);
    // nothing half-admitted, nothing leaked: the pool is whole again
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 80 });
    await engine.close();
  });

  it('several prompts joining at once share the large budget in FIFO order; any decode token caps the step at maxBatchTokens', async () => {
    const rand = prng(2);
    const backend = recording(96);
    const engine = tiny.model.createEngine({ backend, maxSequences: 4, maxBatchTokens: 24, maxPrefillTokens: 100 });
    const lengths = [1, 70, 90, 200, 33, 150];
    // the first request starts a step alone; the other five join together after it
    const streams = lengths.map((n, i) => engine.generate(randomPrompt(rand, n), { temperature: i % 2 ? 1 : 0, seed: i, maxTokens: 4 + i, stopTokens: [] }));
    const results = await Promise.all(streams.map((s) => s.result));
    expect(results.map((r) => r.tokens.length)).toEqual(lengths.map((_, i) => 4 + i));
    for (const [k, s] of backend.steps.entries()) {
      if (s.decoding > 0) expect(s.tokens, `step ${k}: ${JSON.stringify(s)}`).toBeLessThanOrEqual(24);
      else expect(s.tokens, `step ${k}: ${JSON.stringify(s)}`).toBeLessThanOrEqual(100);
    }
    // step 1: the 1-token prompt alone (it draws its first token there); step 2: it decodes, and the
    // first of the joiners gets the 23 tokens left of maxBatchTokens
    expect(backend.steps[0]).toEqual({ tokens: 1, decoding: 0, chunks: [1] });
    expect(backend.steps[1]).toEqual({ tokens: 24, decoding: 1, chunks: [23] });
    // once the first request is done (4 tokens: steps 1-4) nothing decodes: step 5 takes the large
    // budget, filled from the prompts in FIFO order (1 + 90 + 9 of 70 - 69, 90 and 200)
    expect(backend.steps[4]).toEqual({ tokens: 100, decoding: 0, chunks: [1, 90, 9] });
    const large = backend.steps.filter((s) => s.decoding === 0 && s.tokens > 24);
    expect(large.length).toBeGreaterThan(0);
    expect(large[0]!.tokens).toBe(100);
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 96 });
    await engine.close();
  });

  // The same jobs through the chunked schedule (maxPrefillTokens = maxBatchTokens) and the large one:
  // the same tokens, equal to generate()'s, greedy and sampled, on each backend.
  it.each(['native', 'pipelined', 'session'] as const)('gives the tokens of the chunked schedule and of generate() for the same seeds, greedy and sampled (%s backend)', async (kind) => {
    const rand = prng(3);
    const jobs = [3, 150, 40, 260, 9, 90, 1, 131].map((n, i) => ({
      prompt: randomPrompt(rand, n),
      options: { temperature: i % 3 === 0 ? 0 : [0.8, 1.3][i % 2]!, topP: i % 4 === 1 ? 0.9 : 1, seed: 200 + i, maxTokens: [6, 9, 4, 12, 7, 5, 10, 8][i]!, stopTokens: [] as number[] },
    }));
    const refs = await Promise.all(jobs.map((j) => generate(tiny.model, j.prompt, j.options).result));
    const run = async (maxPrefillTokens: number): Promise<{ results: GenerationResult[]; steps: number }> => {
      const options: EngineOptions = { backend: kind === 'pipelined' ? 'native' : kind, pipelineDecode: kind === 'pipelined', maxSequences: 3, maxBatchTokens: 16, maxPrefillTokens, kvBlocks: 96, blockSize: 16, maxContext: 320 };
      const engine = tiny.model.createEngine(options);
      // in two waves: the second joins while the first decodes (mixed steps), then prompts alone
      const first = jobs.slice(0, 4).map((j) => engine.generate(j.prompt, j.options).result);
      await first[0];
      const second = jobs.slice(4).map((j) => engine.generate(j.prompt, j.options).result);
      const results = await Promise.all([...first, ...second]);
      const steps = engine.stats().steps;
      expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 96 });
      await engine.close();
      return { results, steps };
    };
    const chunked = await run(16);
    const large = await run(256);
    for (const [i, ref] of refs.entries()) {
      expect(chunked.results[i]!.tokens, `job ${i} chunked`).toEqual(ref.tokens);
      expect(large.results[i]!.tokens, `job ${i} large`).toEqual(ref.tokens);
      expect(large.results[i]!.finishReason).toBe(ref.finishReason);
      expect(large.results[i]!.usage).toEqual(chunked.results[i]!.usage);
    }
    // the large schedule did run fewer, larger steps
    expect(large.steps).toBeLessThan(chunked.steps);
  });

  it('validates maxPrefillTokens with errors naming it; defaults to max(4096, maxBatchTokens) on GPUs, maxBatchTokens (off) on the CPU', async () => {
    const m = tiny.model;
    expect(DEFAULT_MAX_PREFILL_TOKENS).toBe(4096);
    expect(['cuda', 'cuda:1', 'hip', 'hip:0'].map((d) => maxPrefillTokensDefault(d, 512))).toEqual([4096, 4096, 4096, 4096]);
    expect(maxPrefillTokensDefault('cuda', 8192)).toBe(8192);
    expect(maxPrefillTokensDefault('cpu', 512)).toBe(512);
    expect(maxPrefillTokensDefault('cpu', 64)).toBe(64);
    // generate()'s prefill passes (no minimum): 4096 on a GPU, 512 on the CPU
    expect([maxPrefillTokensDefault('cuda'), maxPrefillTokensDefault('cpu')]).toEqual([4096, 512]);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity])
      expect(() => m.createEngine({ backend: 'session', maxPrefillTokens: bad })).toThrow(`createEngine: maxPrefillTokens must be an integer >= 1, got ${bad}`);
    expect(() => m.createEngine({ backend: 'session', maxPrefillTokens: '2048' as unknown as number })).toThrow('createEngine: maxPrefillTokens must be an integer >= 1, got string "2048"');
    expect(() => m.createEngine({ backend: 'session', maxBatchTokens: 64, maxPrefillTokens: 32 })).toThrow(
      /^createEngine: maxPrefillTokens \(32\) must be at least maxBatchTokens \(64\)/,
    );
    expect(() => m.createEngine({ backend: 'session', maxPrefillTokens: 32 })).toThrow(RangeError); // below the default maxBatchTokens 512
    const defaults = m.createEngine({ backend: 'session', kvBlocks: 8 });
    const wide = m.createEngine({ backend: 'session', kvBlocks: 8, maxBatchTokens: 8192 });
    const off = m.createEngine({ backend: 'session', kvBlocks: 8, maxBatchTokens: 64, maxPrefillTokens: 64 });
    expect(m.device).toBe('cpu');
    expect([defaults.maxBatchTokens, defaults.maxPrefillTokens]).toEqual([512, 512]);
    expect(wide.maxPrefillTokens).toBe(8192);
    expect(off.maxPrefillTokens).toBe(64);
    await Promise.all([defaults.close(), wide.close(), off.close()]);
  });
});
