// NativeBatchBackend: the StepBackend contract (backend.ts) over the native batched step
// (native/model/batch.h). One pool of KV blocks for the model (per device), a block table per
// sequence; a step runs every item's tokens through one forward pass (dense projections as GEMMs over
// all the step's tokens, the experts grouped over the union of the routed experts, attention per
// sequence over its own blocks) on libuv's thread pool, then draws each sampling item's next id with
// its own options and uniform. The sequence's state (its tokens, blocks, busy flag) lives in one
// native object; this class only translates.
import type { NativeBatch, NativeBatchItem, NativeTokenLogprobs } from '../addon-types.js';
import { resolveSampleOptions } from '../sampling.js';
import { toTokenLogprobs } from '../session.js';
import type { BatchItem, StepBackend, StepLogprobs } from './backend.js';

export interface BatchBackendOptions {
  /**
   * KV blocks in the pool, allocated once (blockSize tokens each; a token takes
   * 2 * numLayers * numKvHeads * headDim * 4 bytes on the CPU: 96 KiB for gpt-oss-20b).
   */
  kvBlocks: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** Most sequences open at once (default 64). */
  maxSequences?: number;
  /**
   * Share whole KV blocks between sequences whose prompts begin with the same tokens (default true):
   * a system prompt is then computed once, and a later request with that prefix prefills only the
   * rest. Blocks no sequence holds stay cached until the pool needs them (least recently used first).
   */
  prefixCache?: boolean;
  /**
   * Run decode steps (every item one token) padded to a few bucket sizes, so that each bucket's step
   * is captured once as a CUDA (HIP) graph and replayed (default: true on CUDA and HIP, false on the
   * CPU, where padding only costs time). The results are the same either way.
   */
  padDecodeSteps?: boolean;
  /**
   * Pipelined decode (default false here; createEngine turns it on for CUDA models, where it ran on an
   * H100; compiled for HIP, not run there): a decode step
   * whose items set `next` queues the following decode step of those sequences (fed the ids it draws,
   * on the device) before its ids are read back, so the device does not wait while the caller handles
   * them. Needs padDecodeSteps (on by default with it, also on the CPU, where it only exercises the
   * path; there the queued step is computed before the ids return, so each token comes one step later
   * for no gain: leave it off on the CPU). The results are the same as without it.
   */
  pipelineDecode?: boolean;
}

export class NativeBatchBackend implements StepBackend {
  readonly blockSize: number;
  readonly totalBlocks: number;
  readonly prefixCache: boolean;
  readonly pipelinesDecode: boolean;
  #native: NativeBatch | null;
  #inFlight = new Set<Promise<unknown>>();

  /** @internal created by GptOssModel.createBatchBackend */
  constructor(native: NativeBatch, prefixCache = true) {
    this.#native = native;
    this.prefixCache = prefixCache;
    this.blockSize = native.blockSize;
    this.totalBlocks = native.totalBlocks;
    this.pipelinesDecode = native.pipelinesDecode;
  }

  /** Sequences whose next decode step is queued now (0 when none is). */
  queuedAhead(): number {
    return this.#native?.queuedAhead ?? 0;
  }

  /** Pipelined decode so far: decode steps queued ahead, claimed by the step after, dropped unclaimed. */
  get pipelineStats(): { queued: number; claimed: number; dropped: number } {
    return this.#native?.pipelineStats ?? { queued: 0, claimed: 0, dropped: 0 };
  }

  #get(fn: string): NativeBatch {
    if (!this.#native) throw new Error(`NativeBatchBackend.${fn}: the backend was disposed`);
    return this.#native;
  }

  freeBlocks(): number {
    return this.#get('freeBlocks').freeBlocks();
  }

  /** Sequences open now. */
  get openSequences(): number {
    return this.#native?.openSequences ?? 0;
  }

  /** Blocks in the prefix cache now (held by open sequences or kept for later ones). */
  get cachedBlocks(): number {
    return this.#native?.cachedBlocks ?? 0;
  }

  /**
   * A sequence with room for maxTokens tokens (its blocks taken now), or null when the pool or
   * maxSequences cannot take it at the moment; RangeError when it could never fit the pool. With the
   * prefix cache on, the prompt's leading whole blocks that are cached are shared, and the sequence
   * starts holding those tokens (length(); never the prompt's last token, so a step still draws).
   */
  open(maxTokens: number, prompt?: ArrayLike<number>): number | null {
    const native = this.#get('open');
    if (prompt === undefined || !this.prefixCache) return native.open(maxTokens);
    return native.open(maxTokens, prompt instanceof Int32Array ? prompt : Int32Array.from(prompt));
  }

  /** Idempotent; a sequence in a running step gives its blocks back when that step ends. */
  close(seq: number): void {
    this.#native?.close(seq);
  }

  /** Tokens the sequence holds in its cache. */
  length(seq: number): number {
    return this.#get('length').length(seq);
  }

  /** Bad items reject (TypeError / RangeError naming the item) with nothing reserved or appended. */
  step(items: BatchItem[]): Promise<Int32Array> {
    try {
      return this.#step(items);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * step(), and the logits each sampling item drew its id from, copied back to the host: `logits` is
   * [draws, vocabSize] f32, row j the j-th item (in item order) whose `sample` is set. For checks and
   * debugging (each row is a device-to-host copy of vocabSize floats); the ids are step()'s.
   */
  stepWithLogits(items: BatchItem[]): Promise<{ ids: Int32Array; logits: Float32Array }> {
    try {
      return this.#step<{ ids: Int32Array; logits: Float32Array }>(items, 'stepLogits');
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** step(), and the TokenLogprobs of each item that sets `logprobs` (its row copied back once). */
  async stepLogprobs(items: BatchItem[]): Promise<StepLogprobs> {
    const r = await this.#step<{ ids: Int32Array; logprobs: (NativeTokenLogprobs | null)[] }>(items, 'stepLogprobs');
    return { ids: r.ids, logprobs: r.logprobs.map((l) => (l === null ? null : toTokenLogprobs(l))) };
  }

  #step<T extends Int32Array | { ids: Int32Array } = Int32Array>(items: BatchItem[], call: 'step' | 'stepLogits' | 'stepLogprobs' = 'step'): Promise<T> {
    const native = this.#get('step');
    if (!Array.isArray(items)) throw new TypeError('NativeBatchBackend.step: items must be an array');
    // Sampling options get their defaults here; the native side checks everything else and names the item.
    const p = (native[call] as (items: NativeBatchItem[]) => Promise<unknown>).call(native,
      items.map((item, i) =>
        item !== null && typeof item === 'object' && item.sample !== null && typeof item.sample === 'object'
          ? {
              ...item,
              sample: {
                options: resolveSampleOptions(item.sample.options, `NativeBatchBackend.step: items[${i}].sample.options`),
                uniform: item.sample.uniform,
              },
            }
          : (item as BatchItem),
      ) as NativeBatchItem[],
    );
    const tracked = p.catch(() => undefined);
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
    return p as Promise<T>;
  }

  /** Waits for steps in flight, then frees the pool. */
  async dispose(): Promise<void> {
    const native = this.#native;
    this.#native = null;
    await Promise.all([...this.#inFlight]);
    native?.dispose();
  }
}
