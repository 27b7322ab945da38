// SessionBackend: the StepBackend contract over per-sequence Sessions, on tiny-a (CPU).
import { describe, expect, it } from 'vitest';
import { generate, createRng } from '../../lib/index.js';
import { SessionBackend } from '../../lib/engine/session-backend.js';
import { readJson } from '../helpers/fixtures.js';
import { expectBlockLedger, useCpuModel } from '../helpers/engine.js';

const prompt = readJson<number[]>('tiny-a', 'tokens.json');
const greedy = readJson<number[]>('tiny-a', 'greedy.json');

describe('SessionBackend on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  it('takes ceil(maxTokens / blockSize) blocks, refuses what does not fit (taking nothing), returns them on close', async () => {
    const b = new SessionBackend(tiny.model, { kvBlocks: 10, blockSize: 16 });
    expect(b.freeBlocks()).toBe(10);
    const c = expectBlockLedger(b); // 7 of the 10 blocks taken
    expect(() => b.open(0)).toThrow(/maxTokens must be an integer in \[1, 131072\]/);
    b.close(c);
    expect(b.freeBlocks()).toBe(10);
    await expect(b.step([{ seq: c, tokens: Int32Array.of(1), sample: null }])).rejects.toThrow(/is not an open sequence/);
    await b.dispose();
    expect(() => b.open(1)).toThrow(/disposed/);
  });

  it('chunked prefill + decode steps give generate() tokens, greedy and sampled; two sequences interleaved', async () => {
    const b = new SessionBackend(tiny.model, { kvBlocks: 64, blockSize: 16 });
    const n = 12;
    const run = async (seeds: number[], temperature: number): Promise<number[][]> => {
      const seqs = seeds.map(() => b.open(prompt.length + n)!);
      const rngs = seeds.map((s) => createRng(s));
      const out: number[][] = seeds.map(() => []);
      const half = Math.floor(prompt.length / 2);
      // two prefill chunks, the second sampling; then decode steps with both sequences in one step
      await b.step(seqs.map((seq) => ({ seq, tokens: Int32Array.from(prompt.slice(0, half)), sample: null })));
      let ids = await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.from(prompt.slice(half)), sample: { options: { temperature }, uniform: rngs[i]!.nextUniform() } })));
      for (let k = 1; k < n; k++) {
        ids.forEach((id, i) => out[i]!.push(id));
        ids = await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(ids[i]!), sample: { options: { temperature }, uniform: rngs[i]!.nextUniform() } })));
      }
      ids.forEach((id, i) => out[i]!.push(id));
      for (const seq of seqs) b.close(seq);
      return out;
    };
    const g = await run([1, 2], 0);
    expect(g[0]).toEqual(greedy.slice(0, n));
    expect(g[1]).toEqual(greedy.slice(0, n));
    const s = await run([7, 8], 1.2);
    for (const [i, seed] of [7, 8].entries())
      expect(s[i]).toEqual((await generate(tiny.model, prompt, { temperature: 1.2, seed, maxTokens: n, stopTokens: [] }).result).tokens);
    expect(s[0]).not.toEqual(s[1]);
    expect(b.freeBlocks()).toBe(64);
    await b.dispose();
  });
});
