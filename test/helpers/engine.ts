// What the engine tests (test/engine/, test/generate.test.ts) share: a fixture model loaded on the CPU
// for one describe block, the StepBackend block-ledger contract every backend keeps, random prefill
// chunks, and one runner that plays a schedule of joins, prefill chunks, decode steps and leaves on any
// StepBackend (SessionBackend is the reference the batched backends are held to).
import { afterAll, beforeAll, expect } from 'vitest';
import { loadModel, createRng, type GptOssModel, type SampleOptions } from '../../lib/index.js';
import type { BatchItem, StepBackend } from '../../lib/engine/backend.js';
import type { NativeBatchBackend } from '../../lib/engine/native-backend.js';
import { fixtureDir } from './fixtures.js';

/**
 * The fixture checkpoint `name` (test/fixtures/<name>) loaded on the CPU before the enclosing describe
 * block's tests and disposed after them. Read `.model` inside the tests.
 */
export function useCpuModel(name: string): { readonly model: GptOssModel } {
  let model: GptOssModel | undefined;
  beforeAll(async () => {
    model = await loadModel(fixtureDir(name), { device: 'cpu' });
  });
  afterAll(async () => {
    await model?.dispose();
  });
  return {
    get model(): GptOssModel {
      if (!model) throw new Error(`useCpuModel('${name}'): the model is loaded in beforeAll; read .model inside a test`);
      return model;
    },
  };
}

/**
 * The block ledger on a fresh pool of 10 blocks of 16 tokens: open() takes ceil(maxTokens / 16) blocks
 * now and refuses (taking nothing) what does not fit, close() gives them back and is idempotent.
 * Leaves one sequence of 112 tokens (7 blocks) open and returns it; 7 blocks are taken.
 */
export function expectBlockLedger(b: StepBackend): number {
  const a = b.open(33)!; // 3 blocks
  expect(b.freeBlocks()).toBe(7);
  const c = b.open(112)!; // 7 blocks
  expect(b.freeBlocks()).toBe(0);
  expect(b.open(1)).toBeNull();
  expect(b.freeBlocks()).toBe(0);
  b.close(a);
  b.close(a); // idempotent
  expect(b.freeBlocks()).toBe(3);
  expect(b.open(49)).toBeNull(); // 4 blocks
  return c;
}

/** A prompt of `len` tokens cut into prefill chunks of 1 to ceil(len / 2) tokens, sizes drawn by `int(lo, hi)`. */
export function randomChunks(len: number, int: (lo: number, hi: number) => number): number[] {
  const chunks: number[] = [];
  for (let left = len; left > 0; ) {
    const c = Math.min(left, int(1, Math.max(1, Math.ceil(len / 2))));
    chunks.push(c);
    left -= c;
  }
  return chunks;
}

/** One sequence of a schedule. */
export interface Plan {
  /** Step at which it joins. */
  join: number;
  prompt: number[];
  /** Prefill chunk sizes (their sum is prompt.length). */
  chunks: number[];
  /** Draws it asks for (its KV room is prompt.length + decode). */
  decode: number;
  /** It leaves after this many draws although it asked for the step after (a stop seen one step late); default decode. */
  stopAt?: number;
  options: SampleOptions;
  /** Seed of its own uniform generator (createRng). */
  seed: number;
}

export interface RunOptions {
  /**
   * Give BatchItem.next (the uniform of the sequence's following draw, from its own generator) whenever
   * the sequence means to draw again. The draw order of every generator is that of a plain run, so a
   * backend that ignores `next` draws the same ids.
   */
  next?: boolean;
  /** Filled with the logits of every draw, per sequence (the backend must be a NativeBatchBackend). */
  logits?: Float32Array[][];
}

/** Runs the schedule; returns the ids each sequence drew, in order. */
export async function runSchedule(b: StepBackend, plans: Plan[], opts: RunOptions = {}): Promise<number[][]> {
  interface Live {
    plan: Plan;
    seq: number;
    chunk: number;
    last: number; // the drawn id to feed next
    nextU: number | null;
    drawn: number[];
    rng: ReturnType<typeof createRng>;
  }
  const out: number[][] = plans.map(() => []);
  const done = plans.map(() => false);
  const live = new Map<number, Live>();
  for (let step = 0; live.size > 0 || done.some((d, i) => !d && !live.has(i)); step++) {
    plans.forEach((plan, i) => {
      if (plan.join !== step) return;
      const seq = b.open(plan.prompt.length + plan.decode);
      if (seq === null) throw new Error('pool too small for the schedule');
      live.set(i, { plan, seq, chunk: 0, last: -1, nextU: null, drawn: [], rng: createRng(plan.seed) });
    });
    if (live.size === 0) continue;
    const order = [...live.keys()];
    const items: BatchItem[] = order.map((i) => {
      const l = live.get(i)!;
      const draw = (): BatchItem['sample'] => {
        const uniform = l.nextU ?? l.rng.nextUniform();
        l.nextU = null;
        return { options: l.plan.options, uniform };
      };
      let item: BatchItem;
      if (l.chunk < l.plan.chunks.length) {
        const start = l.plan.chunks.slice(0, l.chunk).reduce((a, c) => a + c, 0);
        const size = l.plan.chunks[l.chunk]!;
        l.chunk++;
        item = { seq: l.seq, tokens: Int32Array.from(l.plan.prompt.slice(start, start + size)), sample: l.chunk === l.plan.chunks.length ? draw() : null };
      } else item = { seq: l.seq, tokens: Int32Array.of(l.last), sample: draw() };
      // it means to draw again after this draw (a plan that stops early does not know it yet)
      if (opts.next && item.sample !== null && l.drawn.length + 1 < l.plan.decode) {
        l.nextU = l.rng.nextUniform();
        item.next = l.nextU;
      }
      return item;
    });
    let ids: Int32Array;
    if (opts.logits) {
      const logits = opts.logits;
      const r = await (b as NativeBatchBackend).stepWithLogits(items);
      ids = r.ids;
      const vocab = r.logits.length / items.filter((item) => item.sample !== null).length;
      let row = 0;
      order.forEach((i, k) => {
        if (items[k]!.sample !== null) (logits[i] ??= []).push(r.logits.slice(row * vocab, ++row * vocab));
      });
    } else ids = await b.step(items);
    order.forEach((i, k) => {
      const l = live.get(i)!;
      if (items[k]!.sample === null) {
        expect(ids[k]).toBe(-1);
        return;
      }
      l.drawn.push(ids[k]!);
      l.last = ids[k]!;
      if (l.drawn.length === (l.plan.stopAt ?? l.plan.decode)) {
        b.close(l.seq);
        out[i] = l.drawn;
        done[i] = true;
        live.delete(i);
      }
    });
  }
  return out;
}
