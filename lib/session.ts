// A sequence decoded incrementally over a KV cache. Each call runs off the main thread.
import type { NativeSession, NativeTokenLogprobs } from './addon-types.js';
import type { LogitBias } from './penalties.js';
import { resolveSampleOptions } from './sampling.js';
import { checkTokenId, toTokenIds } from './token-ids.js';

export interface SampleOptions {
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

/** Most alternatives a TokenLogprobs reports (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * The log-probabilities (natural log) of a drawn token under the model's own distribution: the
 * log-softmax of the logits it was drawn from, before temperature, top-k, top-p and min-p (what vLLM
 * reports by default), so they do not depend on the sampling options.
 */
export interface TokenLogprobs {
  /** The drawn id's. */
  logprob: number;
  /** The row's most likely ids and theirs, most likely first (ties: lower id first), as many as asked. */
  top: { id: number; logprob: number }[];
}

/** @internal the native form (model/logprobs.h) as TokenLogprobs. */
export function toTokenLogprobs(n: NativeTokenLogprobs): TokenLogprobs {
  return { logprob: n.logprob, top: Array.from(n.topIds, (id, i) => ({ id, logprob: n.topLogprobs[i]! })) };
}

/** @internal checks a `logprobs` count (the alternatives to report: an integer in [0, 20]). */
export function checkLogprobsCount(n: unknown, fn: string, name = 'logprobs'): number {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new TypeError(`${fn}: ${name} must be an integer in [0, ${MAX_TOP_LOGPROBS}], got ${String(n)}`);
  if (n < 0 || n > MAX_TOP_LOGPROBS) throw new RangeError(`${fn}: ${name} must be in [0, ${MAX_TOP_LOGPROBS}], got ${n}`);
  return n;
}

export class Session {
  readonly #native: NativeSession;
  readonly vocabSize: number;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  // The ids in the KV cache, in order: the session is the one owner of its token history (prefix
  // reuse reads it). null once a native call failed midway and what the cache holds is unknown.
  #tokens: number[] | null = [];
  /** @internal set by generate() while it runs on this session (one generation at a time). */
  generating = false;

  /** @internal created by GptOssModel.createSession */
  constructor(native: NativeSession, vocabSize: number) {
    this.#native = native;
    this.vocabSize = vocabSize;
  }

  /** Tokens held in the KV cache. */
  get length(): number {
    return this.#native.length;
  }
  get maxContext(): number {
    return this.#native.maxContext;
  }

  /** The token ids in the KV cache (position order); empty when unknown (after a failed call). */
  get tokens(): readonly number[] {
    const t = this.#tokens;
    return t !== null && !this.#disposed && t.length === this.#native.length ? t : [];
  }

  // Records `ids` as appended once `call` succeeds; a failed call leaves the history unknown.
  async #fed<T>(ids: ArrayLike<number>, call: Promise<T>): Promise<T> {
    try {
      const r = await call;
      const t = this.#tokens;
      if (t !== null) for (let i = 0; i < ids.length; i++) t.push(ids[i]!);
      return r;
    } catch (e) {
      this.#tokens = null;
      throw e;
    }
  }

  /** True once dispose() was called: every later call rejects. */
  get disposed(): boolean {
    return this.#disposed;
  }

  #live(fn: string): void {
    if (this.#disposed) throw new Error(`${fn}: the session was disposed`);
  }

  // Calls on one session run in order, one at a time. Argument errors reject the returned promise
  // (they are thrown before anything is queued).
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Appends tokens; resolves to the logits of the last position ([vocabSize]). */
  prefill(tokens: ArrayLike<number>): Promise<Float32Array> {
    return this.#guard(() => {
      const ids = this.#ids(tokens, 'Session.prefill');
      return this.#serial(() => this.#fed(ids, this.#native.forward(ids, 'last')));
    });
  }

  /** Appends tokens; resolves to the logits of every new position ([n * vocabSize]). */
  prefillAll(tokens: ArrayLike<number>): Promise<Float32Array> {
    return this.#guard(() => {
      const ids = this.#ids(tokens, 'Session.prefillAll');
      return this.#serial(() => this.#fed(ids, this.#native.forward(ids, 'all')));
    });
  }

  /** Appends tokens without copying logits back (sample() still works on the last position). */
  append(tokens: ArrayLike<number>): Promise<void> {
    return this.#guard(() => {
      const ids = this.#ids(tokens, 'Session.append');
      return this.#serial(async () => {
        await this.#fed(ids, this.#native.forward(ids, 'none'));
      });
    });
  }

  /** Appends one token; resolves to the next-token logits. */
  step(token: number): Promise<Float32Array> {
    return this.#guard(() => {
      this.#live('Session.step');
      const ids = Int32Array.of(checkTokenId(token, this.vocabSize, 'Session.step', "argument 'token'"));
      return this.#serial(() => this.#fed(ids, this.#native.forward(ids, 'last')));
    });
  }

  /**
   * Draws the next token from the last logits on the model's device. `uniform` in [0, 1). `bias`
   * (logit bias, penalties): added to the row first; logprobs() still reads the row as the model gave it.
   */
  sample(options: SampleOptions, uniform: number, bias?: LogitBias): Promise<number> {
    if (this.#disposed) return Promise.reject(new Error('Session.sample: the session was disposed'));
    return this.#serial(async () => this.#native.sample(resolveSampleOptions(options, 'Session.sample'), uniform, bias));
  }

  /**
   * The log-probabilities of `id` in the last logits row (the one sample(), stepSample() and a
   * stepSampleMany() that ran to its end drew from), with the row's `top` (0..20) most likely ids.
   * One copy of the row to the host; computed off the main thread.
   */
  logprobs(id: number, top = 0): Promise<TokenLogprobs> {
    return this.#guard(() => {
      const fn = 'Session.logprobs';
      this.#live(fn);
      checkTokenId(id, this.vocabSize, fn, "argument 'id'");
      checkLogprobsCount(top, fn, "argument 'top'");
      return this.#serial(async () => toTokenLogprobs(await this.#native.logprobs(id, top)));
    });
  }

  /**
   * Decode step: appends `token` and draws the next token from its logits on the device; only the
   * id comes back (one native call a token).
   */
  stepSample(token: number, options: SampleOptions, uniform: number, bias?: LogitBias): Promise<number> {
    return this.#guard(() => {
      this.#live('Session.stepSample');
      checkTokenId(token, this.vocabSize, 'Session.stepSample', "argument 'token'");
      return this.#serial(() => this.#fed([token], this.#native.step(token, resolveSampleOptions(options, 'Session.stepSample'), uniform, bias)));
    });
  }

  /**
   * `uniforms.length` decode steps in one native call, as that many stepSample() calls: step i appends
   * its input (`token`, then each drawn id) and draws the next id with `uniforms[i]`. It stops after a
   * drawn id in `stopIds` (that id is the last in the result and is not appended). Each step is queued
   * on the device before the previous id is read back, so the ids never wait on the host between
   * steps. When it stops early there are no logits left for sample() (append or step first).
   */
  stepSampleMany(
    token: number,
    options: SampleOptions,
    uniforms: ArrayLike<number>,
    stopIds: ArrayLike<number> = [],
  ): Promise<Int32Array> {
    return this.#guard(() => {
      const fn = 'Session.stepSampleMany';
      this.#live(fn);
      checkTokenId(token, this.vocabSize, fn, "argument 'token'");
      const stops = toTokenIds(stopIds, this.vocabSize, fn, 'stopIds');
      const u = Float64Array.from(uniforms);
      return this.#serial(async () => {
        const ids = await this.#fed([], this.#native.stepMany(token, resolveSampleOptions(options, fn), u, stops));
        // appended: the input, then each drawn id but the last
        this.#tokens?.push(token, ...ids.subarray(0, ids.length - 1));
        return ids;
      });
    });
  }

  /** Forgets tokens past `length` (the cached prefix is kept). */
  truncate(length: number): Promise<void> {
    if (this.#disposed) return Promise.reject(new Error('Session.truncate: the session was disposed'));
    return this.#serial(async () => {
      this.#native.truncate(length);
      if (length === 0) this.#tokens = [];
      else if (this.#tokens !== null && length < this.#tokens.length) this.#tokens.length = length;
    });
  }

  reset(): Promise<void> {
    return this.truncate(0);
  }

  dispose(): Promise<void> {
    this.#disposed = true;
    return this.#serial(async () => this.#native.dispose());
  }

  // Bad arguments reject the promise (as the native side's checks do) rather than throw synchronously.
  #guard<T>(body: () => Promise<T>): Promise<T> {
    try {
      return body();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #ids(tokens: ArrayLike<number>, fn: string): Int32Array {
    this.#live(fn);
    return toTokenIds(tokens, this.vocabSize, fn);
  }
}
