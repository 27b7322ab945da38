// Token log-probabilities (options.logprobs; Session.logprobs; StepBackend.stepLogprobs): the
// log-softmax of the raw logits each token was drawn from, at the drawn id and at the row's most
// likely ids. Checked against transformers' own logits (tiny-a's logits.f32), against the session's
// logits recomputed by a prefill, across temperatures (the values must not move with them), and on the
// batched engine (plain and pipelined decode) against generate().
import { describe, expect, it } from 'vitest';
import { generate, type GenerationResult, type TokenLogprobs } from '../lib/index.js';
import { SessionBackend } from '../lib/engine/session-backend.js';
import { readF32, readJson } from './helpers/fixtures.js';
import { useCpuModel } from './helpers/engine.js';

const prompt = readJson<number[]>('tiny-a', 'tokens.json');

/** log-softmax of row `r` of [rows, vocab] logits, in double precision. */
function logSoftmax(logits: Float32Array, r: number, vocab: number): Float64Array {
  const row = logits.subarray(r * vocab, (r + 1) * vocab);
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - m);
  const lse = m + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}

/** The k most likely ids of a row (ties: lower id first). */
function topIds(lp: Float64Array, k: number): number[] {
  return [...lp.keys()].sort((a, b) => lp[b]! - lp[a]! || a - b).slice(0, k);
}

/** Every reported value against a reference row: the drawn id's, and the alternatives as the row's top k. */
function expectMatches(got: TokenLogprobs, id: number, ref: Float64Array, k: number, tol: number): void {
  expect(Math.abs(got.logprob - ref[id]!)).toBeLessThan(tol);
  expect(got.top).toHaveLength(k);
  for (const t of got.top) expect(Math.abs(t.logprob - ref[t.id]!)).toBeLessThan(tol);
  for (let j = 1; j < got.top.length; j++) expect(got.top[j - 1]!.logprob).toBeGreaterThanOrEqual(got.top[j]!.logprob);
  // the reported ids are the row's top k, up to swaps of values closer than the tolerance
  const want = topIds(ref, k);
  for (let j = 0; j < k; j++) if (got.top[j]!.id !== want[j]) expect(Math.abs(ref[got.top[j]!.id]! - ref[want[j]!]!)).toBeLessThan(tol);
}

describe('logprobs on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');
  const vocab = 1024;

  it("the first token's logprobs are the log-softmax of transformers' logits at that position", async () => {
    const ref = readF32('tiny-a', 'logits.f32');
    for (const k of [15, 16, 31, 47]) {
      const r = await generate(tiny.model, prompt.slice(0, k + 1), { temperature: 0, maxTokens: 1, stopTokens: [], logprobs: 5 }).result;
      expect(r.finishReason).toBe('length');
      const lp = logSoftmax(ref, k, vocab);
      expect(r.tokens[0]).toBe(topIds(lp, 1)[0]); // greedy: the argmax
      expect(r.logprobs).toHaveLength(1);
      expectMatches(r.logprobs![0]!, r.tokens[0]!, lp, 5, 2e-3);
      expect(r.logprobs![0]!.top[0]!.id).toBe(r.tokens[0]);
      expect(r.logprobs![0]!.logprob).toBe(r.logprobs![0]!.top[0]!.logprob);
    }
  });

  for (const options of [{ temperature: 0 }, { temperature: 1, seed: 11 }, { temperature: 1.7, topK: 40, seed: 12 }, { temperature: 0.6, topP: 0.8, seed: 13 }]) {
    it(`every token's logprobs are those of the logits it was drawn from, and the tokens do not change (${JSON.stringify(options)})`, async () => {
      const base = { maxTokens: 24, stopTokens: [], ...options };
      const plain = await generate(tiny.model, prompt, base).result;
      const stream = generate(tiny.model, prompt, { ...base, logprobs: 3 });
      const events: TokenLogprobs[] = [];
      for await (const e of stream) if (e.type === 'token') events.push(e.logprobs!);
      const r = await stream.result;
      expect(r.tokens).toEqual(plain.tokens);
      expect(plain.logprobs).toBeUndefined();
      expect(r.logprobs).toEqual(events);
      // the logits each token came from: the prompt's last row, then each generated token's row
      const session = tiny.model.createSession({ maxContext: prompt.length + r.tokens.length });
      const all = await session.prefillAll([...prompt, ...r.tokens.slice(0, -1)]);
      await session.dispose();
      for (let j = 0; j < r.tokens.length; j++) expectMatches(r.logprobs![j]!, r.tokens[j]!, logSoftmax(all, prompt.length - 1 + j, vocab), 3, 1e-4);
    });
  }

  it('Session.logprobs reads the row sample() drew from; its arguments are checked', async () => {
    const session = tiny.model.createSession({ maxContext: 64 });
    await expect(session.logprobs(1, 2)).rejects.toThrow(/needs a forward pass first/);
    const logits = await session.prefill(prompt.slice(0, 20));
    const id = await session.sample({ temperature: 0 }, 0.5);
    const got = await session.logprobs(id, 20);
    expectMatches(got, id, logSoftmax(logits, 0, vocab), 20, 1e-5);
    const other = await session.logprobs(7, 0);
    expect(other.top).toEqual([]);
    expect(Math.abs(other.logprob - logSoftmax(logits, 0, vocab)[7]!)).toBeLessThan(1e-5);
    await expect(session.logprobs(vocab, 1)).rejects.toThrow(RangeError);
    await expect(session.logprobs(1, 21)).rejects.toThrow(/top' must be in \[0, 20\]/);
    await expect(session.logprobs(1, 1.5)).rejects.toThrow(TypeError);
    await session.dispose();
    await expect(session.logprobs(1, 1)).rejects.toThrow(/disposed/);
  });

  it('bad options.logprobs throw before anything runs, naming the option', () => {
    expect(() => generate(tiny.model, prompt, { logprobs: 21 })).toThrow(/options.logprobs must be in \[0, 20\], got 21/);
    expect(() => generate(tiny.model, prompt, { logprobs: -1 })).toThrow(RangeError);
    expect(() => generate(tiny.model, prompt, { logprobs: 2.5 })).toThrow(TypeError);
    expect(() => generate(tiny.model, prompt, { logprobs: '3' as unknown as number })).toThrow(/options.logprobs must be an integer/);
  });

  describe('on the engine (batched steps) the same as generate()', () => {
    const requests = [
      { prompt: prompt.slice(0, 9), options: { temperature: 0, logprobs: 2 } },
      { prompt: prompt.slice(0, 30), options: { temperature: 1, seed: 5, logprobs: 0 } },
      { prompt: prompt.slice(5, 40), options: { temperature: 0.9, topP: 0.9, seed: 6 } }, // none asked
      { prompt: prompt.slice(0, 48), options: { temperature: 1.2, seed: 7, logprobs: 20 } },
    ];
    const run = async (make: () => ReturnType<typeof tiny.model.createEngine>): Promise<GenerationResult[]> => {
      const engine = make();
      try {
        return await Promise.all(requests.map((q) => engine.generate(q.prompt, { maxTokens: 12, stopTokens: [], ...q.options }).result));
      } finally {
        await engine.close();
      }
    };
    const expectSame = (got: GenerationResult[], want: GenerationResult[]): void => {
      for (const [i, r] of got.entries()) {
        expect(r.finishReason).toBe('length');
        expect(r.tokens).toEqual(want[i]!.tokens);
        if (requests[i]!.options.logprobs === undefined) {
          expect(r.logprobs).toBeUndefined();
          continue;
        }
        expect(r.logprobs).toHaveLength(r.tokens.length);
        for (const [j, l] of r.logprobs!.entries()) {
          const w = want[i]!.logprobs![j]!;
          expect(Math.abs(l.logprob - w.logprob)).toBeLessThan(1e-4);
          expect(l.top.map((t) => t.id)).toEqual(w.top.map((t) => t.id));
          for (const [t, a] of l.top.entries()) expect(Math.abs(a.logprob - w.top[t]!.logprob)).toBeLessThan(1e-4);
        }
      }
    };

    it('native batch backend, plain and pipelined decode, and the session backend', async () => {
      const want = await Promise.all(requests.map((q) => generate(tiny.model, q.prompt, { maxTokens: 12, stopTokens: [], ...q.options }).result));
      expectSame(await run(() => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16 })), want);
      expectSame(await run(() => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16, pipelineDecode: true })), want);
      expectSame(await run(() => tiny.model.createEngine({ maxSequences: 4, kvBlocks: 32, blockSize: 16, backend: 'session' })), want);
    });

    it('a pipelined batch backend driven by hand: the queued and the claimed steps report what generate() does', async () => {
      const b = tiny.model.createBatchBackend({ kvBlocks: 8, blockSize: 16, maxSequences: 1, pipelineDecode: true });
      try {
        const seq = b.open(64)!;
        const sample = { options: { temperature: 0 }, uniform: 0.5 };
        let r = await b.stepLogprobs([{ seq, tokens: Int32Array.from(prompt.slice(0, 20)), sample, logprobs: 3 }]);
        const ids = [r.ids[0]!];
        const lps = [r.logprobs[0]!];
        for (let j = 0; j < 6; j++) {
          r = await b.stepLogprobs([{ seq, tokens: Int32Array.of(ids.at(-1)!), sample, next: 0.5, logprobs: 3 }]);
          ids.push(r.ids[0]!);
          lps.push(r.logprobs[0]!);
        }
        expect(b.pipelineStats.claimed).toBeGreaterThan(0);
        const want = await generate(tiny.model, prompt.slice(0, 20), { temperature: 0, maxTokens: 7, stopTokens: [], logprobs: 3 }).result;
        expect(ids).toEqual(want.tokens);
        lps.forEach((l, j) => {
          expect(Math.abs(l.logprob - want.logprobs![j]!.logprob)).toBeLessThan(1e-4);
          expect(l.top.map((t) => t.id)).toEqual(want.logprobs![j]!.top.map((t) => t.id));
        });
      } finally {
        await b.dispose();
      }
    });

    it('stepLogprobs checks its items; step() refuses logprobs', async () => {
      const b = tiny.model.createBatchBackend({ kvBlocks: 8, blockSize: 16, maxSequences: 2 });
      const s = new SessionBackend(tiny.model, { kvBlocks: 8 });
      try {
        for (const backend of [b, s]) {
          const seq = backend.open(32)!;
          const sample = { options: { temperature: 0 }, uniform: 0.5 };
          const tokens = Int32Array.from(prompt.slice(0, 4));
          await expect(backend.step([{ seq, tokens, sample, logprobs: 1 }])).rejects.toThrow(/logprobs is read by stepLogprobs only/);
          await expect(backend.stepLogprobs([{ seq, tokens, sample: null, logprobs: 1 }])).rejects.toThrow(/logprobs is set but \.sample is null/);
          await expect(backend.stepLogprobs([{ seq, tokens, sample, logprobs: 21 }])).rejects.toThrow(/logprobs must be .*\[0, 20\]/);
          await expect(backend.stepLogprobs([{ seq, tokens, sample, logprobs: 0.5 }])).rejects.toThrow(TypeError);
          const r = await backend.stepLogprobs([{ seq, tokens, sample, logprobs: 4 }]);
          expect(r.logprobs[0]!.top).toHaveLength(4);
          expect(r.logprobs[0]!.top[0]!.id).toBe(r.ids[0]);
          const d = await backend.stepLogprobs([{ seq, tokens: Int32Array.of(r.ids[0]!), sample }]);
          expect(d.logprobs).toEqual([null]);
          backend.close(seq);
        }
      } finally {
        await b.dispose();
        await s.dispose();
      }
    });
  });
});
