// SessionBackend: the StepBackend contract over today's per-sequence native Sessions. Each sequence
// is one Session whose KV cache holds maxTokens positions; a step runs its items one after another
// (no batching), so it is as fast as generate() per token and no faster in aggregate. It is the
// reference the batched native backend is checked against: the same calls generate() makes
// (append + sample for a prompt, stepSample for a decode token), so the same seed gives the same ids.
import type { GptOssModel } from '../model.js';
import { checkLogprobsCount, type Session, type TokenLogprobs } from '../session.js';
import { blocksFor, type BatchItem, type StepBackend, type StepLogprobs } from './backend.js';

export interface SessionBackendOptions {
  /** KV blocks in the pool: the sum over open sequences of ceil(maxTokens / blockSize) is at most this. */
  kvBlocks: number;
  /** Tokens per block (default 16): only the granularity of the accounting here. */
  blockSize?: number;
}

interface OpenSequence {
  session: Session;
  blocks: number;
}

export class SessionBackend implements StepBackend {
  readonly blockSize: number;
  readonly totalBlocks: number;
  readonly #model: GptOssModel;
  readonly #open = new Map<number, OpenSequence>();
  readonly #closing = new Set<Promise<void>>();
  #used = 0;
  #next = 1;
  #disposed = false;

  constructor(model: GptOssModel, options: SessionBackendOptions) {
    const blockSize = options.blockSize ?? 16;
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new RangeError(`SessionBackend: blockSize must be an integer >= 1, got ${blockSize}`);
    if (!Number.isSafeInteger(options.kvBlocks) || options.kvBlocks < 1)
      throw new RangeError(`SessionBackend: kvBlocks must be an integer >= 1, got ${options.kvBlocks}`);
    this.#model = model;
    this.blockSize = blockSize;
    this.totalBlocks = options.kvBlocks;
  }

  freeBlocks(): number {
    return this.totalBlocks - this.#used;
  }

  /** Sequences open now. */
  get openSequences(): number {
    return this.#open.size;
  }

  open(maxTokens: number): number | null {
    if (this.#disposed) throw new Error('SessionBackend.open: the backend was disposed');
    const limit = this.#model.config.maxPositionEmbeddings;
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1 || maxTokens > limit)
      throw new RangeError(`SessionBackend.open: maxTokens must be an integer in [1, ${limit}] (max_position_embeddings), got ${maxTokens}`);
    const blocks = blocksFor(maxTokens, this.blockSize);
    if (blocks > this.freeBlocks()) return null;
    const session = this.#model.createSession({ maxContext: maxTokens });
    const seq = this.#next++;
    this.#open.set(seq, { session, blocks });
    this.#used += blocks;
    return seq;
  }

  close(seq: number): void {
    const s = this.#open.get(seq);
    if (!s) return;
    this.#open.delete(seq);
    this.#used -= s.blocks;
    // The session's dispose queues behind any call still running on it (Session serialises its calls).
    const done = s.session.dispose().catch(() => undefined);
    this.#closing.add(done);
    void done.finally(() => this.#closing.delete(done));
  }

  async step(items: BatchItem[]): Promise<Int32Array> {
    return (await this.#step(items, false)).ids;
  }

  stepLogprobs(items: BatchItem[]): Promise<StepLogprobs> {
    return this.#step(items, true);
  }

  async #step(items: BatchItem[], withLogprobs: boolean): Promise<StepLogprobs> {
    const fn = withLogprobs ? 'SessionBackend.stepLogprobs' : 'SessionBackend.step';
    const sessions = items.map((item, i) => {
      const s = this.#open.get(item.seq);
      if (!s) throw new Error(`${fn}: items[${i}].seq ${item.seq} is not an open sequence`);
      if (item.tokens.length < 1) throw new RangeError(`${fn}: items[${i}].tokens is empty`);
      if (item.bias !== undefined && item.sample === null) throw new TypeError(`${fn}: items[${i}].bias is set but .sample is null (the bias is added for the draw)`);
      if (item.logprobs !== undefined) {
        if (!withLogprobs) throw new TypeError(`${fn}: items[${i}].logprobs is read by stepLogprobs only`);
        if (item.sample === null) throw new TypeError(`${fn}: items[${i}].logprobs is set but .sample is null (logprobs are those of the draw)`);
        checkLogprobsCount(item.logprobs, fn, `items[${i}].logprobs`);
      }
      return s.session;
    });
    if (new Set(items.map((it) => it.seq)).size !== items.length) throw new Error(`${fn}: a sequence appears twice in one step`);
    const ids = new Int32Array(items.length).fill(-1);
    const logprobs: (TokenLogprobs | null)[] = items.map(() => null);
    for (let i = 0; i < items.length; i++) {
      const { tokens, sample } = items[i]!;
      const session = sessions[i]!;
      if (sample === null) await session.append(tokens);
      else if (tokens.length === 1 && session.length > 0) ids[i] = await session.stepSample(tokens[0]!, sample.options, sample.uniform, items[i]!.bias);
      else {
        await session.append(tokens);
        ids[i] = await session.sample(sample.options, sample.uniform, items[i]!.bias);
      }
      const k = items[i]!.logprobs;
      if (sample !== null && k !== undefined) logprobs[i] = await session.logprobs(ids[i]!, k);
    }
    return { ids, logprobs };
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const seq of [...this.#open.keys()]) this.close(seq);
    await Promise.all([...this.#closing]);
  }
}
