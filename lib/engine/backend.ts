// The contract between the scheduler (lib/engine/scheduler.ts) and whatever runs the forward passes:
// a pool of KV blocks, sequences that hold some of them, and one batched step at a time.
//
// Two implementations: SessionBackend (session-backend.ts: one native Session per sequence, items
// run one after another; the reference for equivalence tests) and the native batched step with a
// paged KV cache (native-backend.ts, written by the serve-native helper). /work/notes/ENGINE.md is
// where the contract was agreed; change both sides in one commit if it changes.
import type { SampleOptions, TokenLogprobs } from '../session.js';
import type { LogitBias } from '../penalties.js';

/** One sequence's share of a batched step. */
export interface BatchItem {
  /** Handle from StepBackend.open(). */
  seq: number;
  /** Appended this step: a prefill chunk (>= 1 token) or the one decode token. */
  tokens: Int32Array;
  /** Draw the next id from the logits of this item's last position; null for a non-final prefill chunk. */
  sample: { options: SampleOptions; uniform: number } | null;
  /**
   * Pipelined decode (a backend whose `pipelinesDecode` is true): the uniform this sequence's next
   * decode step will draw with, when the caller means to run that step (the id drawn now fed back with
   * the same sample options). The backend may queue that step before this one's ids come back; the
   * next step() claims it when its items are exactly some of those sequences, each `{ tokens: [the id
   * drawn for it], sample: { same options, uniform: next } }`, and drops it otherwise (the results are
   * the same either way). Only with `sample`.
   */
  next?: number;
  /**
   * stepLogprobs only, with `sample`: report the draw's log-probability and this many most likely
   * alternatives (an integer in [0, 20]).
   */
  logprobs?: number;
  /**
   * With `sample`, not with `next`: added to the logits row before the draw (logit bias and penalties;
   * log-probabilities are read before it).
   */
  bias?: LogitBias;
}

/** stepLogprobs()'s result: step()'s ids, and per item its TokenLogprobs where it set `logprobs` (null elsewhere). */
export interface StepLogprobs {
  ids: Int32Array;
  logprobs: (TokenLogprobs | null)[];
}

export interface StepBackend {
  /** Tokens per KV block. */
  readonly blockSize: number;
  /** Whether step() takes BatchItem.next and queues decode steps ahead (pipelined decode). */
  readonly pipelinesDecode?: boolean;
  /** Sequences whose next decode step is queued now (after a step settles; 0 when none is). */
  queuedAhead?(): number;
  readonly totalBlocks: number;
  freeBlocks(): number;
  /**
   * A sequence with KV room for maxTokens tokens, its ceil(maxTokens/blockSize) blocks taken from the
   * pool now (never half-admitted); null when the pool cannot hold it (nothing taken). `prompt`: the
   * tokens it will be fed first; a backend with a prefix cache may start the sequence holding a prefix
   * of them (whole blocks another sequence computed, shared), which length() then reports.
   */
  open(maxTokens: number, prompt?: ArrayLike<number>): number | null;
  /** Tokens the sequence holds (optional: a backend without it starts every sequence empty). */
  length?(seq: number): number;
  /** Ends a sequence; its blocks return to the pool. Idempotent; valid after a failed step. */
  close(seq: number): void;
  /**
   * One forward over all items (a sequence at most once a step). Resolves to the drawn id per item
   * (-1 where sample is null). Runs off the main thread.
   */
  step(items: BatchItem[]): Promise<Int32Array>;
  /**
   * step(), and the log-probabilities of the draws of the items that set `logprobs` (from the rows
   * they drew from; the ids are step()'s). step() rejects items that set `logprobs`.
   */
  stepLogprobs(items: BatchItem[]): Promise<StepLogprobs>;
  dispose(): Promise<void>;
}

/** Blocks a sequence of `maxTokens` tokens holds. */
export function blocksFor(maxTokens: number, blockSize: number): number {
  return Math.ceil(maxTokens / blockSize);
}
