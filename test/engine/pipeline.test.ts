// Pipelined decode (createBatchBackend({ pipelineDecode: true }), createEngine({ pipelineDecode: true })):
// a decode step whose items give `next` queues the following decode step before its ids are read; the
// next step claims it or drops it. The hazards: a sequence that stops on the id just drawn (its queued
// row is computed for nothing and must leave no token, no block and no prefix-cache entry behind), a
// sequence that joins or a prompt chunk while a step is queued (the queued step is dropped or claimed
// without it), aborts, and the pool's accounting. Everything runs on the CPU through the same native
// path CUDA takes (padded decode steps, draws written into the step's token rows, a ticket read back).
import { describe, expect, it } from 'vitest';
import { createRng, generate, type SampleOptions, type GenerationResult } from '../../lib/index.js';
import { SessionBackend } from '../../lib/engine/session-backend.js';
import { pipelineDecodeDefault } from '../../lib/engine/scheduler.js';
import type { NativeBatchBackend } from '../../lib/engine/native-backend.js';
import { relL2 } from '../helpers/fixtures.js';
import { randomChunks, runSchedule, useCpuModel, type Plan } from '../helpers/engine.js';
import { rng } from '../helpers/rng.js';

const prng = (seed: number): (() => number) => {
  const r = rng(seed, 'pipeline');
  return () => r.nextFloat();
};

/** A random schedule; every third sequence leaves early (stopAt < decode: a stop seen one step late). */
function makePlans(seed: number, count: number, vocab: number, maxPrompt: number): Plan[] {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const optionsList: SampleOptions[] = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.3, topK: 20 }, { temperature: 0.7, minP: 0.05 }];
  return Array.from({ length: count }, (_, i) => {
    const len = int(1, maxPrompt);
    const chunks = randomChunks(len, int);
    const decode = int(1, 16);
    return {
      join: int(0, 10),
      prompt: Array.from({ length: len }, () => int(0, vocab - 1)),
      chunks,
      decode,
      stopAt: i % 3 === 1 ? int(1, decode) : decode,
      options: optionsList[i % optionsList.length]!,
      seed: 500 + i,
    };
  });
}

describe('pipelined decode on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  it.each([
    [7, 6, 8, true],
    [8, 10, 4, false],
    [9, 12, 4, false],
  ])('draws what Sessions draw across joins, chunks and stops seen one step late (seed %i, %i sequences, blocks of %i); logits equal the plain step', async (seed, count, blockSize, drops) => {
    const plans = makePlans(seed, count, tiny.model.config.vocabSize, 20);
    const kvBlocks = plans.reduce((a, p) => a + Math.ceil((p.prompt.length + p.decode) / blockSize), 0);
    const reference = new SessionBackend(tiny.model, { kvBlocks, blockSize });
    const want = await runSchedule(reference, plans, { next: true });
    await reference.dispose();

    const plain = tiny.model.createBatchBackend({ kvBlocks, blockSize, maxSequences: count, padDecodeSteps: true });
    const plainLogits: Float32Array[][] = [];
    expect(await runSchedule(plain, plans, { next: true, logits: plainLogits })).toEqual(want);
    expect(plain.pipelineStats).toEqual({ queued: 0, claimed: 0, dropped: 0 });
    await plain.dispose();

    const b = tiny.model.createBatchBackend({ kvBlocks, blockSize, maxSequences: count, pipelineDecode: true });
    expect(b.pipelinesDecode).toBe(true);
    const gotLogits: Float32Array[][] = [];
    const got = await runSchedule(b, plans, { next: true, logits: gotLogits });
    expect(got).toEqual(want);
    // steps were queued ahead and claimed, and some dropped (joins, chunks, early stops)
    const stats = b.pipelineStats;
    expect(stats.claimed).toBeGreaterThan(3);
    if (drops) expect(stats.dropped).toBeGreaterThan(0); // a join or a chunk while a step was queued
    expect(stats.queued).toBeGreaterThanOrEqual(stats.claimed + stats.dropped);
    for (const [i, rows] of plainLogits.entries()) {
      expect(gotLogits[i]!.length, `sequence ${i}`).toBe(rows.length);
      for (const [j, row] of rows.entries()) expect(relL2(gotLogits[i]![j]!, row), `sequence ${i} draw ${j}`).toBeLessThan(1e-5);
    }
    // nothing held: every block back, no sequence open, the rows computed for nothing left no trace
    expect(b.freeBlocks()).toBe(kvBlocks);
    expect(b.openSequences).toBe(0);
    await b.dispose();
  });

  it('a stop seen one step late: the queued row is dropped, its blocks go to the next sequence, whose draws (and prefix reuse) equal a Session', async () => {
    const blockSize = 8;
    const prompt = Array.from({ length: 16 }, (_, i) => (i * 37 + 5) % 1024);
    // A: 16 + 24 tokens (5 blocks), B: 8 + 16 (3 blocks); the pool holds exactly those 8
    const b = tiny.model.createBatchBackend({ kvBlocks: 8, blockSize, maxSequences: 4, pipelineDecode: true });
    const a = b.open(40, prompt)!;
    const other = b.open(24)!;
    const ra = createRng(3);
    const rb = createRng(4);
    let ids = await b.step([
      { seq: a, tokens: Int32Array.from(prompt), sample: { options: { temperature: 0 }, uniform: ra.nextUniform() } },
      { seq: other, tokens: Int32Array.from(prompt.slice(0, 8)), sample: { options: { temperature: 1 }, uniform: rb.nextUniform() } },
    ]);
    const drawnA = [ids[0]!];
    let lastB = ids[1]!;
    // decode steps, each asking for the next; A "stops" after 7 draws (22 tokens held: its 2 prompt
    // blocks cached; its queued row, position 22, lands in its own 3rd block)
    let ua = ra.nextUniform();
    let ub = rb.nextUniform();
    for (let k = 0; k < 6; k++) {
      const na = ra.nextUniform();
      const nb = rb.nextUniform();
      ids = await b.step([
        { seq: a, tokens: Int32Array.of(drawnA.at(-1)!), sample: { options: { temperature: 0 }, uniform: ua }, next: na },
        { seq: other, tokens: Int32Array.of(lastB), sample: { options: { temperature: 1 }, uniform: ub }, next: nb },
      ]);
      drawnA.push(ids[0]!);
      lastB = ids[1]!;
      ua = na;
      ub = nb;
      expect(b.queuedAhead()).toBe(2);
    }
    expect(b.length(a)).toBe(16 + 6);
    b.close(a); // with its next step queued: that row counts for nothing
    expect(b.freeBlocks()).toBe(5); // A's 5 blocks (2 of them kept in the prefix cache, unheld)
    // C: A's prompt and its first 6 drawn ids: its 2 whole prompt blocks come from the cache; it takes
    // the rest of the pool (A's freed blocks); B decodes on, its queued step dropped (C joins)
    const cPrompt = [...prompt, ...drawnA.slice(0, 6)];
    const c = b.open(cPrompt.length + 6, cPrompt)!;
    expect(b.length(c)).toBe(16); // the 2 prompt blocks (A's 3rd block was never whole: not cached)
    const rc = createRng(9);
    const gotC: number[] = [];
    ids = await b.step([
      { seq: other, tokens: Int32Array.of(lastB), sample: { options: { temperature: 1 }, uniform: ub } },
      { seq: c, tokens: Int32Array.from(cPrompt.slice(16)), sample: { options: { temperature: 0.9, topP: 0.95 }, uniform: rc.nextUniform() } },
    ]);
    gotC.push(ids[1]!);
    for (let k = 0; k < 5; k++) {
      ids = await b.step([{ seq: c, tokens: Int32Array.of(gotC.at(-1)!), sample: { options: { temperature: 0.9, topP: 0.95 }, uniform: rc.nextUniform() } }]);
      gotC.push(ids[0]!);
    }
    const stats = b.pipelineStats;
    expect(stats.claimed).toBe(5); // steps 2..6 claimed what the step before queued
    expect(stats.dropped).toBe(1); // the last one, when A left and C joined
    // a Session fed the same: A's draws and C's
    const s = tiny.model.createSession({ maxContext: 64 });
    await s.prefillAll(prompt);
    const sa = createRng(3);
    const refA = [await s.sample({ temperature: 0 }, sa.nextUniform())];
    for (let k = 0; k < 6; k++) refA.push(await s.stepSample(refA.at(-1)!, { temperature: 0 }, sa.nextUniform()));
    expect(drawnA).toEqual(refA);
    await s.reset();
    await s.prefillAll(cPrompt);
    const sc = createRng(9);
    const refC = [await s.sample({ temperature: 0.9, topP: 0.95 }, sc.nextUniform())];
    for (let k = 0; k < 5; k++) refC.push(await s.stepSample(refC.at(-1)!, { temperature: 0.9, topP: 0.95 }, sc.nextUniform()));
    await s.dispose();
    expect(gotC).toEqual(refC);
    b.close(other);
    b.close(c);
    expect(b.freeBlocks()).toBe(8);
    expect(b.openSequences).toBe(0);
    await b.dispose();
  });

  it('a masked item where a step was queued ahead (a held part begins): the queued step is dropped, and every draw equals the plain backend\'s', async () => {
    const vocab = tiny.model.config.vocabSize;
    const prompts = [Array.from({ length: 12 }, (_, i) => (i * 53 + 7) % vocab), Array.from({ length: 9 }, (_, i) => (i * 31 + 2) % vocab)];
    const allow = new Uint32Array(Math.ceil(vocab / 32));
    for (const id of [17, 400, 901]) allow[id >>> 5]! |= 1 << (id & 31);
    const run = async (pipelineDecode: boolean): Promise<{ ids: number[][]; stats: { queued: number; claimed: number; dropped: number } }> => {
      const b = tiny.model.createBatchBackend({ kvBlocks: 16, blockSize: 8, maxSequences: 2, pipelineDecode, padDecodeSteps: true });
      const seqs = prompts.map((p) => b.open(40, p)!);
      const rngs = [createRng(11), createRng(12)];
      const opts: SampleOptions[] = [{ temperature: 1 }, { temperature: 0.8, topP: 0.9 }];
      let last = Array.from(await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.from(prompts[i]!), sample: { options: opts[i]!, uniform: rngs[i]!.nextUniform() } }))));
      const ids: number[][] = [last];
      let uniforms = rngs.map((r) => r.nextUniform());
      for (let k = 0; k < 8; k++) {
        const masked = k === 4; // sequence 0's draw at step 4 is held to three tokens (what a response format's mask does)
        const next = rngs.map((r) => r.nextUniform());
        const items = seqs.map((seq, i) => ({
          seq,
          tokens: Int32Array.of(last[i]!),
          sample: { options: opts[i]!, uniform: uniforms[i]! },
          ...(masked && i === 0 ? { bias: { ids: new Int32Array(0), deltas: new Float32Array(0), allow } } : { next: next[i]! }),
        }));
        last = Array.from(await b.step(items));
        ids.push(last);
        uniforms = next;
      }
      seqs.forEach((seq) => b.close(seq));
      const stats = b.pipelineStats;
      await b.dispose();
      return { ids, stats };
    };
    const plain = await run(false);
    const piped = await run(true);
    expect(piped.ids).toEqual(plain.ids);
    expect([17, 400, 901]).toContain(plain.ids[5]![0]);
    expect(piped.stats.dropped).toBeGreaterThanOrEqual(1); // the step queued before the masked one
    expect(piped.stats.claimed).toBeGreaterThan(3);
  });

  it('checks next and the option', async () => {
    expect(() => tiny.model.createBatchBackend({ kvBlocks: 4, pipelineDecode: true, padDecodeSteps: false })).toThrow(/pipelineDecode needs padded decode steps/);
    expect(() => tiny.model.createBatchBackend({ kvBlocks: 4, pipelineDecode: 1 as unknown as boolean })).toThrow(/pipelineDecode must be a boolean/);
    const b = tiny.model.createBatchBackend({ kvBlocks: 4, blockSize: 4, pipelineDecode: true });
    const s = b.open(8)!;
    await expect(b.step([{ seq: s, tokens: Int32Array.of(1), sample: null, next: 0.5 }])).rejects.toThrow(/items\[0\]\.next is set but \.sample is null/);
    await expect(b.step([{ seq: s, tokens: Int32Array.of(1), sample: { options: {}, uniform: 0.5 }, next: 1 }])).rejects.toThrow(/items\[0\]\.next must be in \[0, 1\)/);
    await expect(b.step([{ seq: s, tokens: Int32Array.of(1), sample: { options: {}, uniform: 0.5 }, next: '0.5' as unknown as number }])).rejects.toThrow(TypeError);
    expect(b.length(s)).toBe(0);
    await b.step([{ seq: s, tokens: Int32Array.of(1, 2, 3, 4, 5, 6), sample: null }]);
    const [id] = await b.step([{ seq: s, tokens: Int32Array.of(7), sample: { options: {}, uniform: 0.5 }, next: 0.25 }]);
    expect(b.queuedAhead()).toBe(1); // position 7 of 8
    // claimed; the step after it would need position 8 of 8: nothing queued
    await b.step([{ seq: s, tokens: Int32Array.of(id!), sample: { options: {}, uniform: 0.25 }, next: 0.125 }]);
    expect(b.queuedAhead()).toBe(0);
    expect(b.pipelineStats).toEqual({ queued: 1, claimed: 1, dropped: 0 });
    expect(b.length(s)).toBe(8);
    b.close(s);
    expect(b.freeBlocks()).toBe(4);
    await b.dispose();
    expect(() => tiny.model.createEngine({ backend: 'session', pipelineDecode: true })).toThrow(/pipelineDecode needs backend 'native'/);
  });

  it('the engine pipelines by default on CUDA only: off on this CPU model unless asked for, and false turns it off', async () => {
    expect([pipelineDecodeDefault('cuda'), pipelineDecodeDefault('cuda:0'), pipelineDecodeDefault('cuda:3')]).toEqual([true, true, true]);
    expect([pipelineDecodeDefault('cpu'), pipelineDecodeDefault('hip'), pipelineDecodeDefault('hip:0'), pipelineDecodeDefault('cudax')]).toEqual([false, false, false, false]);
    const plain = tiny.model.createEngine({ maxSequences: 2, maxBatchTokens: 16, kvBlocks: 8 });
    const asked = tiny.model.createEngine({ pipelineDecode: true, maxSequences: 2, maxBatchTokens: 16, kvBlocks: 8 });
    const off = tiny.model.createEngine({ pipelineDecode: false, maxSequences: 2, maxBatchTokens: 16, kvBlocks: 8 });
    expect([plain, asked, off].map((e) => e.backend.pipelinesDecode === true)).toEqual([tiny.model.device.startsWith('cuda'), true, false]);
    await Promise.all([plain.close(), asked.close(), off.close()]);
  });

  const randomPrompt = (rand: () => number, n: number): number[] => Array.from({ length: n }, () => Math.floor(rand() * 1024));

  it('engine: one stream is pipelined step after step, and a request joining while a step is queued waits for it; both equal generate()', async () => {
    const rand = prng(31);
    const engine = tiny.model.createEngine({ pipelineDecode: true, maxSequences: 4, maxBatchTokens: 32, kvBlocks: 64, blockSize: 8, maxContext: 256 });
    const backend = engine.backend as NativeBatchBackend;
    const jobA = { prompt: randomPrompt(rand, 21), options: { temperature: 1, seed: 7, maxTokens: 40, stopTokens: [] as number[] } };
    const jobB = { prompt: randomPrompt(rand, 45), options: { temperature: 0, seed: 8, maxTokens: 12, stopTokens: [] as number[] } };
    const a = engine.generate(jobA.prompt, jobA.options);
    let b: ReturnType<typeof engine.generate> | null = null;
    const ra = (async () => {
      let n = 0;
      for await (const e of a) if (e.type === 'token' && ++n === 10) b = engine.generate(jobB.prompt, jobB.options);
      return a.result;
    })();
    const gotA = await ra;
    const gotB = await b!.result;
    const [refA, refB] = await Promise.all([generate(tiny.model, jobA.prompt, jobA.options).result, generate(tiny.model, jobB.prompt, jobB.options).result]);
    expect(gotA.tokens).toEqual(refA.tokens);
    expect(gotB.tokens).toEqual(refB.tokens);
    const stats = backend.pipelineStats;
    // A's 39 decode steps: all but a few (the first, B's prefill and the one after) claimed a queued
    // step; B joined between steps: the step queued then was claimed first (B waited one step), none dropped
    expect(stats.claimed).toBeGreaterThanOrEqual(30);
    expect(stats.dropped).toBe(0);
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 64, finished: 2 });
    await engine.close();
  });

  it('engine soak: concurrent requests with stops, aborts (some during a queued step) and joins; unaborted ones equal generate(), the pool ends empty', async () => {
    const rand = prng(77);
    const engine = tiny.model.createEngine({ pipelineDecode: true, maxSequences: 5, maxBatchTokens: 40, kvBlocks: 60, blockSize: 8, maxContext: 96, maxQueue: 100 });
    const backend = engine.backend as NativeBatchBackend;
    const jobs = Array.from({ length: 24 }, (_, i) => ({
      prompt: randomPrompt(rand, 1 + Math.floor(rand() * 40)),
      options: {
        temperature: i % 3 === 0 ? 0 : 1,
        topP: i % 4 === 1 ? 0.9 : 1,
        seed: 900 + i,
        maxTokens: 1 + Math.floor(rand() * 24),
        stopTokens: [] as number[],
      },
      abortAt: i % 4 === 2 ? 1 + Math.floor(rand() * 6) : 0,
    }));
    // stop tokens that some greedy jobs meet on the way (seen one step late by the pipeline)
    for (const j of jobs.filter((j) => j.options.temperature === 0 && j.options.maxTokens > 4)) {
      const ref = await generate(tiny.model, j.prompt, j.options).result;
      j.options.stopTokens = [ref.tokens[2]!];
    }
    const refs = await Promise.all(jobs.map((j) => generate(tiny.model, j.prompt, j.options).result));
    const results: GenerationResult[] = await Promise.all(
      jobs.map(async (j, i) => {
        await new Promise((r) => setTimeout(r, (i % 6) * 3));
        const stream = engine.generate(j.prompt, j.options);
        let n = 0;
        for await (const e of stream) if (e.type === 'token' && ++n === j.abortAt) stream.abort();
        return stream.result;
      }),
    );
    for (const [i, r] of results.entries()) {
      const ref = refs[i]!;
      if (jobs[i]!.abortAt > 0 && r.finishReason === 'abort') expect(ref.tokens.slice(0, r.tokens.length), `job ${i}`).toEqual(r.tokens);
      else {
        expect(r.tokens, `job ${i}`).toEqual(ref.tokens);
        expect(r.finishReason, `job ${i}`).toBe(ref.finishReason);
      }
    }
    expect(results.some((r) => r.finishReason === 'abort')).toBe(true);
    expect(results.some((r) => r.finishReason === 'stop')).toBe(true);
    expect(backend.pipelineStats.claimed).toBeGreaterThan(10);
    await engine.idle();
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, freeBlocks: 60, finished: 24 });
    expect(backend.openSequences).toBe(0);
    await engine.close();
  });
});
