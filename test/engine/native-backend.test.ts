// NativeBatchBackend: the batched native step over a paged KV cache (native/model/batch.h), checked
// against SessionBackend (one native Session per sequence, items one after another: the one-sequence
// path generate() uses). The same schedule of joins, prefill chunks, decode steps and leaves, with the
// same sampling options and uniforms, must draw the same ids on both, greedy and sampled; on tiny-a and
// on a deeper random checkpoint with a short sliding window (so windows, block edges and chunk edges
// all cross).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, createRng, generate, type GptOssModel, type SampleOptions } from '../../lib/index.js';
import { SessionBackend } from '../../lib/engine/session-backend.js';
import type { StepBackend } from '../../lib/engine/backend.js';
import { readJson } from '../helpers/fixtures.js';
import { expectBlockLedger, randomChunks, runSchedule, useCpuModel, type Plan } from '../helpers/engine.js';
import { writeCheckpoint, TINY } from '../helpers/checkpoint.js';

const prompt = readJson<number[]>('tiny-a', 'tokens.json');
const greedy = readJson<number[]>('tiny-a', 'greedy.json');

/** A random schedule: sequences of mixed lengths joining and leaving at different steps. */
function makePlans(seed: number, count: number, vocab: number, maxPrompt: number): Plan[] {
  const rng = createRng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.nextUniform() * (hi - lo + 1));
  const optionsList: SampleOptions[] = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.3, topK: 20 }];
  return Array.from({ length: count }, (_, i) => {
    const len = int(1, maxPrompt);
    const chunks = randomChunks(len, int);
    return {
      join: int(0, 12),
      prompt: Array.from({ length: len }, () => int(0, vocab - 1)),
      chunks,
      decode: int(1, 14),
      options: optionsList[i % optionsList.length]!,
      seed: 1000 + i,
    };
  });
}

async function equalToSessions(model: GptOssModel, seed: number, count: number, blockSize: number, maxPrompt: number, padDecodeSteps = false): Promise<void> {
  const plans = makePlans(seed, count, model.config.vocabSize, maxPrompt);
  const kvBlocks = plans.reduce((a, p) => a + Math.ceil((p.prompt.length + p.decode) / blockSize), 0);
  const reference = new SessionBackend(model, { kvBlocks, blockSize });
  const want = await runSchedule(reference, plans);
  await reference.dispose();
  const batch = model.createBatchBackend({ kvBlocks, blockSize, maxSequences: count, padDecodeSteps });
  const got = await runSchedule(batch, plans);
  expect(batch.freeBlocks()).toBe(kvBlocks);
  expect(batch.openSequences).toBe(0);
  await batch.dispose();
  expect(got).toEqual(want);
  expect(want.every((ids, i) => ids.length === plans[i]!.decode)).toBe(true);
}

describe('NativeBatchBackend on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  it('takes ceil(maxTokens / blockSize) blocks, refuses what does not fit now (taking nothing), returns them on close', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 10, blockSize: 16, maxSequences: 3 });
    expect([b.blockSize, b.totalBlocks, b.freeBlocks()]).toEqual([16, 10, 10]);
    const c = expectBlockLedger(b); // 7 of the 10 blocks taken
    const d = b.open(16)!;
    b.open(16);
    expect(b.open(1)).toBeNull(); // maxSequences 3
    expect(() => b.open(0)).toThrow(RangeError);
    expect(() => b.open(161)).toThrow(/161 tokens need 11 blocks of 16, the pool has 10 in all/);
    b.close(c);
    b.close(d);
    await expect(b.step([{ seq: c, tokens: Int32Array.of(1), sample: null }])).rejects.toThrow(/items\[0\]\.seq \d+ is not an open sequence/);
    await b.dispose();
    expect(() => b.open(1)).toThrow(/disposed/);
  });

  it('bad items are typed errors naming the item, and reserve nothing', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 8, blockSize: 4 });
    const s = b.open(8)!;
    const t = b.open(8)!;
    const ok = { seq: s, tokens: Int32Array.of(1, 2), sample: null };
    await expect(b.step([ok, { seq: t, tokens: Int32Array.of(1, 5000), sample: null }])).rejects.toThrow(
      /items\[1\]\.tokens\[1\] = 5000 is outside the vocabulary \[0, 1024\)/,
    );
    await expect(b.step([ok, { seq: t, tokens: Int32Array.of(), sample: null }])).rejects.toThrow(/items\[1\]\.tokens is empty/);
    await expect(b.step([ok, { seq: t, tokens: [1] as unknown as Int32Array, sample: null }])).rejects.toThrow(TypeError);
    await expect(b.step([ok, ok])).rejects.toThrow(/items\[1\]\.seq \d+ appears twice/);
    await expect(b.step([{ seq: t, tokens: new Int32Array(9), sample: null }])).rejects.toThrow(/0 cached \+ 9 new tokens exceed the sequence's 8/);
    await expect(b.step([{ ...ok, sample: { options: { temperature: -1 }, uniform: 0.5 } }])).rejects.toThrow(/items\[0\]\.sample\.options: temperature/);
    await expect(b.step([{ ...ok, sample: { options: {}, uniform: 1 } }])).rejects.toThrow(/items\[0\]\.sample\.uniform must be in \[0, 1\)/);
    await expect(b.step([])).rejects.toThrow(/items is empty/);
    // nothing was appended or left busy by the failures
    expect(b.length(s)).toBe(0);
    const first = b.step([ok]);
    // the sequence is busy until its step ends; closing it then defers the blocks' return
    await expect(b.step([{ seq: s, tokens: Int32Array.of(3), sample: null }])).rejects.toThrow(/still running; await it first/);
    b.close(s);
    expect(b.freeBlocks()).toBe(4);
    expect(await first).toEqual(Int32Array.of(-1));
    expect(b.freeBlocks()).toBe(6);
    expect(() => b.length(s)).toThrow(/not open/);
    b.close(t);
    expect(b.freeBlocks()).toBe(8);
    await b.dispose();
  });

  it('a prefill in chunks draws what the whole prefill draws, and both continue as generate()', async () => {
    const n = 10;
    const b = tiny.model.createBatchBackend({ kvBlocks: 40, blockSize: 8 });
    for (const [temperature, seed] of [[0, 1], [1.1, 42]] as const) {
      const whole = b.open(prompt.length + n)!;
      const chunked = b.open(prompt.length + n)!;
      const ra = createRng(seed);
      const rb = createRng(seed);
      const cut = [3, 11];
      await b.step([{ seq: chunked, tokens: Int32Array.from(prompt.slice(0, cut[0])), sample: null }]);
      let ids = await b.step([
        { seq: whole, tokens: Int32Array.from(prompt), sample: { options: { temperature }, uniform: ra.nextUniform() } },
        { seq: chunked, tokens: Int32Array.from(prompt.slice(cut[0], cut[1])), sample: null },
      ]);
      const a = [ids[0]!];
      ids = await b.step([{ seq: chunked, tokens: Int32Array.from(prompt.slice(cut[1])), sample: { options: { temperature }, uniform: rb.nextUniform() } }]);
      const c = [ids[0]!];
      while (a.length < n) {
        ids = await b.step([
          { seq: chunked, tokens: Int32Array.of(c.at(-1)!), sample: { options: { temperature }, uniform: rb.nextUniform() } },
          { seq: whole, tokens: Int32Array.of(a.at(-1)!), sample: { options: { temperature }, uniform: ra.nextUniform() } },
        ]);
        c.push(ids[0]!);
        a.push(ids[1]!);
      }
      expect(c).toEqual(a);
      const want = temperature === 0 ? greedy.slice(0, n) : (await generate(tiny.model, prompt, { temperature, seed, maxTokens: n, stopTokens: [] }).result).tokens;
      expect(a).toEqual(want);
      expect(b.length(whole)).toBe(prompt.length + n - 1);
      b.close(whole);
      b.close(chunked);
    }
    expect(b.freeBlocks()).toBe(40);
    await b.dispose();
  });

  it('stepWithLogits: the logits each draw came from (a row per sampling item, item order), as a Session computes them', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 20, blockSize: 8 });
    const vocab = tiny.model.config.vocabSize;
    const s1 = b.open(prompt.length + 4)!;
    const s2 = b.open(prompt.length + 4)!;
    const ref1 = tiny.model.createSession({ maxContext: prompt.length + 4 });
    const ref2 = tiny.model.createSession({ maxContext: prompt.length + 4 });
    const opt = { options: { temperature: 0 }, uniform: 0.5 };
    // s1 prefills in one item (draws), s2 a chunk that does not draw: one logits row
    let r = await b.stepWithLogits([
      { seq: s1, tokens: Int32Array.from(prompt), sample: opt },
      { seq: s2, tokens: Int32Array.from(prompt.slice(0, 5)), sample: null },
    ]);
    expect(r.logits.length).toBe(vocab);
    const want1 = await ref1.prefill(prompt);
    await ref2.append(prompt.slice(0, 5));
    const rel = (a: Float32Array, w: Float32Array) => {
      let num = 0, den = 0;
      for (let i = 0; i < w.length; i++) {
        num += (a[i]! - w[i]!) ** 2;
        den += w[i]! ** 2;
      }
      return Math.sqrt(num / den);
    };
    expect(rel(r.logits, want1)).toBeLessThan(1e-5);
    expect(r.ids[0]).toBe(await ref1.sample({ temperature: 0 }, 0.5));
    expect(r.ids[1]).toBe(-1);
    // then both draw: rows in item order (s2 listed first)
    const next1 = r.ids[0]!;
    r = await b.stepWithLogits([
      { seq: s2, tokens: Int32Array.from(prompt.slice(5)), sample: opt },
      { seq: s1, tokens: Int32Array.of(next1), sample: opt },
    ]);
    expect(r.logits.length).toBe(2 * vocab);
    expect(rel(r.logits.subarray(0, vocab), await ref2.prefill(prompt.slice(5)))).toBeLessThan(1e-5);
    expect(rel(r.logits.subarray(vocab), await ref1.step(next1))).toBeLessThan(1e-5);
    // the same step's ids as step() draws them
    expect(b.length(s1)).toBe(prompt.length + 1);
    await ref1.dispose();
    await ref2.dispose();
    b.close(s1);
    b.close(s2);
    await b.dispose();
  });

  // Runs one sequence: prompt prefilled (what open() did not already hold), then `n` draws; returns
  // the ids and how many prompt tokens open() said it held.
  async function runOne(b: StepBackend & { length(seq: number): number }, p: number[], n: number, options: SampleOptions, seed: number, keepOpen = false) {
    const seq = b.open(p.length + n, p)!;
    expect(seq).not.toBeNull();
    const held = b.length(seq);
    const rng = createRng(seed);
    let ids = await b.step([{ seq, tokens: Int32Array.from(p.slice(held)), sample: { options, uniform: rng.nextUniform() } }]);
    const out = [ids[0]!];
    while (out.length < n) {
      ids = await b.step([{ seq, tokens: Int32Array.of(out.at(-1)!), sample: { options, uniform: rng.nextUniform() } }]);
      out.push(ids[0]!);
    }
    if (!keepOpen) b.close(seq);
    return { out, held, seq };
  }

  it('prefix cache: a prompt that begins with cached whole blocks shares them, prefills the rest, and draws the same ids', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 40, blockSize: 8 });
    const plain = tiny.model.createBatchBackend({ kvBlocks: 40, blockSize: 8, prefixCache: false });
    const system = prompt.slice(0, 27); // 3 whole blocks of 8 and 3 tokens
    const a = [...system, ...prompt.slice(27)];
    const c = [...system, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    const first = await runOne(b, a, 6, { temperature: 0 }, 1, true); // stays open: its blocks are held
    expect(first.held).toBe(0);
    expect(b.cachedBlocks).toBe(Math.floor((a.length + 5) / 8)); // every whole block it filled
    const free = b.freeBlocks();
    const second = await runOne(b, c, 5, { temperature: 0.9 }, 7, true);
    expect(second.held).toBe(24); // the 3 whole blocks of the shared system prompt, not the partial 4th
    expect(free - b.freeBlocks()).toBe(Math.ceil((c.length + 5) / 8) - 3); // it took only what it does not share
    const want = await runOne(plain, c, 5, { temperature: 0.9 }, 7);
    expect(want.held).toBe(0);
    expect(second.out).toEqual(want.out);
    // the same prompt again: all its whole blocks but the one holding its last token
    const again = await runOne(b, a, 6, { temperature: 0 }, 1);
    expect(again.held).toBe(Math.floor((a.length - 1) / 8) * 8);
    expect(again.out).toEqual(first.out);
    b.close(first.seq);
    b.close(second.seq);
    // nothing held: every block is free or cached-and-reusable, and the pool counts them all
    expect(b.openSequences).toBe(0);
    expect(b.freeBlocks()).toBe(40);
    expect(b.cachedBlocks).toBeGreaterThan(0);
    await b.dispose();
    await plain.dispose();
  });

  it('prefix cache: a full pool evicts unheld cached blocks (least recently used leaves first), never held ones', async () => {
    const b = tiny.model.createBatchBackend({ kvBlocks: 12, blockSize: 4 });
    const p1 = prompt.slice(0, 21);
    const r1 = await runOne(b, p1, 3, { temperature: 0 }, 1);
    const cachedAfter = b.cachedBlocks;
    expect(cachedAfter).toBe(5); // 23 tokens held: 5 whole blocks
    expect(b.freeBlocks()).toBe(12);
    // a sequence that needs the whole pool: every cached block is evicted for it
    const big = b.open(48)!;
    expect(big).not.toBeNull();
    expect(b.cachedBlocks).toBe(0);
    expect(b.freeBlocks()).toBe(0);
    b.close(big);
    // the prompt again: nothing cached any more, so it is prefilled whole and draws the same ids
    const r2 = await runOne(b, p1, 3, { temperature: 0 }, 1, true);
    expect(r2.held).toBe(0);
    expect(r2.out).toEqual(r1.out);
    // held blocks are never evicted: with r2 open (6 blocks, 5 cached and held), 7 blocks cannot be had
    expect(b.open(28)).toBeNull();
    expect(b.cachedBlocks).toBe(5);
    expect(b.open(24)).not.toBeNull();
    await b.dispose();
  });

  for (const blockSize of [4, 16]) {
    it(`mixed lengths joining and leaving: the same ids as one session a sequence (blockSize ${blockSize})`, async () => {
      await equalToSessions(tiny.model, 7 + blockSize, 6, blockSize, 40);
    });
  }

  // The CUDA layout of a decode step (padded to a bucket: rows past the items write and read the
  // pool's spare block through table rows of their own, their logits never drawn from), run on the CPU.
  it('decode steps padded to bucket sizes draw the same ids (padDecodeSteps, as on CUDA)', async () => {
    await equalToSessions(tiny.model, 23, 11, 4, 30, true);
    await expect(async () => tiny.model.createBatchBackend({ kvBlocks: 4, padDecodeSteps: 1 as unknown as boolean })).rejects.toThrow(/padDecodeSteps must be a boolean/);
  });
});

describe('NativeBatchBackend on a deeper random checkpoint (CPU)', () => {
  let dir: string;
  let model: GptOssModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpt-oss-batch-'));
    // 8 layers (half sliding, window 8), GQA 4:1, 16 experts of which 4 a token.
    await writeCheckpoint(dir, { ...TINY, numLayers: 8, numExperts: 16, expertsPerToken: 4, slidingWindow: 8, seed: 31337 });
    model = await loadModel(dir, { device: 'cpu' });
  });
  afterAll(async () => {
    await model?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('mixed lengths joining and leaving, greedy and sampled: the same ids as one session a sequence (blockSize 5)', async () => {
    await equalToSessions(model, 99, 8, 5, 60);
  });

  it('the same with decode steps padded to bucket sizes (blockSize 5)', async () => {
    await equalToSessions(model, 101, 13, 5, 30, true);
  });
});
