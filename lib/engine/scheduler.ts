// The engine: continuous batching over a StepBackend.
//
// Requests join and leave between steps. Each step carries one decode token for every running
// sequence that has started decoding, and fills what is left of the token budget (maxBatchTokens)
// with chunks of prompts still being prefilled, so a long prompt is spread over several steps and
// never stalls the streams already running (chunked prefill). When no sequence is decoding there is
// no stream to protect, and a step carries up to maxPrefillTokens of prompt instead: a long prompt
// alone is prefilled in fewer, larger steps, whose GEMMs run at the higher large-batch rate (a
// 2,000-token prompt in one step instead of four 512-token ones). A request is admitted only when the
// backend can give it KV room for its whole context at once (open() takes every block or none); until
// then it waits in a bounded FIFO queue, and beyond that bound it is refused (QueueFullError).
//
// Each sequence's state has one owner, its Sequence record below: the prompt and the ids fed to the
// KV cache (token history), how much of it the cache holds (position), its phase (busy state), its
// backend handle (the KV blocks), the sampler state and the output. Each request gets the same
// GenerationStream that generate() returns, fed by the same GenerationOutput, and draws its uniforms
// from the same seeded PRNG in the same order, so a seed gives the same tokens as generate().
import type { GptOssModel } from '../model.js';
import {
  GenerationOutput,
  GenerationStream,
  linkAbort,
  prepareGeneration,
  resolveGenerationOptions,
  longPromptTexts,
  maxPrefillTokensDefault,
  DEFAULT_MAX_PREFILL_TOKENS,
  afterEncoding,
  type FinishReason,
  type GenerateInput,
  type GenerateOptions,
  type GenerationResult,
  type PreparedGeneration,
} from '../generate.js';
import { blocksFor, type BatchItem, type StepBackend, type StepLogprobs } from './backend.js';
import { SessionBackend } from './session-backend.js';
import { ContextLengthError, EngineClosedError, QueueFullError } from './errors.js';

export interface EngineOptions {
  /** Sequences decoding at once (default 8). */
  maxSequences?: number;
  /** Tokens in one step: decode tokens plus prefill chunks (default 512; at least maxSequences). */
  maxBatchTokens?: number;
  /**
   * Tokens in a step that carries prompts only, taken when no sequence is decoding; at least
   * maxBatchTokens (equal turns it off). Default on CUDA and HIP max(4096, maxBatchTokens); on the CPU
   * maxBatchTokens (off: a 512-token step measured no faster there than four of 128, and a step cannot
   * be interrupted by an abort). While any sequence decodes, steps stay within maxBatchTokens, so a long
   * prompt never delays the running streams' next token by more than a maxBatchTokens step; with nothing
   * decoding, the prompt goes through in steps of up to this many tokens, each one forward pass at the
   * large-batch GEMM rate (time to first token of a 2,000-token prompt alone on an H100, 20b: 92 ms in one
   * step, 145 ms in four 512-token steps). Such a step runs eagerly (decode steps are the only ones padded to buckets and
   * replayed as CUDA graphs), and the step's activation buffers grow to its tokens: about 0.2 MB a token
   * on the 20b (CUDA; ~0.27 MB on the CPU), 0.8-1.1 GB at 4096.
   */
  maxPrefillTokens?: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** KV blocks in the pool (default: maxSequences full contexts, maxSequences * ceil(maxContext / blockSize)). */
  kvBlocks?: number;
  /** Most tokens one sequence may hold, prompt and output (default min(4096, max_position_embeddings)). */
  maxContext?: number;
  /** Requests that may wait for admission; more are refused with QueueFullError (default 256). */
  maxQueue?: number;
  /**
   * What runs the steps: 'native' (NativeBatchBackend: one batched forward a step over a paged KV
   * cache; CPU, CUDA and HIP models), 'session' (SessionBackend: a native Session per sequence, one after
   * another) or a StepBackend of your own. Default 'native' on the CPU and CUDA (checked on an H200:
   * logits within 1.7e-4 of per-sequence Sessions, 2.2x their aggregate at 8 streams), 'session' on HIP
   * ('native' there is opt-in until its batched kernels have run on an AMD GPU).
   */
  backend?: 'native' | 'session' | StepBackend;
  /**
   * Pipelined decode (the 'native' backend's `pipelineDecode`; default true on CUDA, false elsewhere):
   * each decode step asks the backend to queue the sequences' next decode step before its ids come
   * back, so the device keeps working while the scheduler handles them (the host turnaround a step
   * otherwise adds: about 0.4 ms a token on an H100). A sequence that stops on the id just drawn has one
   * step computed for nothing, which is dropped; a request that joins starts one step later. The tokens
   * are the same either way. Ran on an H100 (tenth session: the check against the plain step, memcheck
   * clean; one stream 85% -> 100% of generate()'s decode rate, 8 streams +8%, 64 streams +7%). On the
   * CPU the queued step is computed before the ids return, so it gains nothing there; on HIP it is
   * compiled, not run. A backend of your own opts in with its `pipelinesDecode`.
   */
  pipelineDecode?: boolean;
}

/**
 * createEngine's pipelineDecode when the options leave it out: on for CUDA devices (measured there),
 * off on the CPU (no gain) and on HIP (not yet run on an AMD GPU).
 */
export function pipelineDecodeDefault(device: string): boolean {
  return device === 'cuda' || device.startsWith('cuda:');
}

/** generate()'s options, less the session (the engine owns the KV cache). */
export type EngineRequestOptions = Omit<GenerateOptions, 'session'>;

export interface EngineStats {
  /** Sequences holding KV blocks (prefilling or decoding). */
  running: number;
  /** Requests waiting for admission. */
  waiting: number;
  freeBlocks: number;
  totalBlocks: number;
  /** Steps run since the engine started. */
  steps: number;
  /** Requests finished since the engine started. */
  finished: number;
}

type Phase = 'waiting' | 'prefill' | 'decode' | 'done';

/** One request's sequence: the single owner of its state (see the file comment). */
class Sequence {
  phase: Phase = 'waiting';
  /** Backend handle once admitted. */
  seq = -1;
  /** Tokens the KV cache may hold. */
  readonly capacity: number;
  /** Ids fed to the KV cache so far, in order (the prompt, then each drawn id that was fed back). */
  readonly history: number[] = [];
  /** The last drawn id, fed at the next decode step. */
  last = -1;
  /** The uniform of its next decode step when it was drawn early (pipelined decode: given as `next`). */
  nextUniform: number | null = null;
  /** Prompt tokens the backend's prefix cache held when it joined (not prefilled). */
  cachedPrompt = 0;
  /** Its next draw's mask is being computed (structured outputs): it sits out the steps until it is back. */
  maskWait = false;
  t0 = 0;
  t1 = 0;
  readonly output: GenerationOutput;
  readonly prepared: PreparedGeneration;
  readonly signal: AbortSignal;
  readonly #resolve: (r: GenerationResult) => void;
  readonly #unlink: () => void;

  constructor(
    prepared: PreparedGeneration,
    capacity: number,
    signal: AbortSignal,
    unlink: () => void,
    output: GenerationOutput,
    resolve: (r: GenerationResult) => void,
  ) {
    this.prepared = prepared;
    this.capacity = capacity;
    this.signal = signal;
    this.#unlink = unlink;
    this.output = output;
    this.#resolve = resolve;
  }

  /** Tokens in the KV cache. */
  get position(): number {
    return this.history.length;
  }

  /** Prompt tokens not yet prefilled. */
  get pendingPrompt(): number {
    return this.prepared.prompt.length - Math.min(this.position, this.prepared.prompt.length);
  }

  finish(reason: FinishReason | null): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (reason !== null) this.output.finishReason = reason;
    this.#unlink();
    const t2 = performance.now();
    const t1 = this.t1 || t2;
    const t0 = this.t0 || t1;
    this.#resolve(
      this.output.finish({ promptTokens: this.prepared.prompt.length, completionTokens: this.output.tokens.length, cachedPromptTokens: this.cachedPrompt }, { t0, t1, t2 }),
    );
  }
}

// createEngine's maxPrefillTokens when its options leave it out: maxPrefillTokensDefault(device,
// maxBatchTokens), the rule generate() uses for its prefill passes (one definition, in generate.ts).
export { DEFAULT_MAX_PREFILL_TOKENS, maxPrefillTokensDefault };

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1)
    throw new RangeError(`createEngine: ${name} must be an integer >= 1, got ${typeof value === 'number' ? value : `${typeof value} ${JSON.stringify(value)}`}`);
  return v;
}

export class Engine {
  readonly maxSequences: number;
  readonly maxBatchTokens: number;
  /** Tokens in a step when no sequence is decoding (prompt chunks only). */
  readonly maxPrefillTokens: number;
  /** Most tokens one sequence may hold (prompt and output). */
  readonly maxContext: number;
  readonly maxQueue: number;
  readonly backend: StepBackend;
  readonly #model: GptOssModel;
  readonly #waiting: Sequence[] = [];
  readonly #running: Sequence[] = [];
  #looping: Promise<void> | null = null;
  #closed = false;
  #abortEverything = false;
  /** The last admission found no KV room for the queue's head. */
  #blocked = false;
  // the pool as close() left it, once the backend is disposed (stats() still answers)
  #freeAtClose: number | null = null;
  #steps = 0;
  #finished = 0;
  #idleWaiters: (() => void)[] = [];
  // Pipelined decode: whether the backend takes BatchItem.next, and the sequences whose next decode
  // step it queued during the last step.
  readonly #pipelined: boolean;
  #ahead = new Set<Sequence>();

  /** @internal use model.createEngine() */
  constructor(model: GptOssModel, options: EngineOptions = {}) {
    this.#model = model;
    this.maxSequences = positiveInt(options.maxSequences, 8, 'maxSequences');
    this.maxBatchTokens = positiveInt(options.maxBatchTokens, 512, 'maxBatchTokens');
    if (this.maxBatchTokens < this.maxSequences)
      throw new RangeError(`createEngine: maxBatchTokens (${this.maxBatchTokens}) must be at least maxSequences (${this.maxSequences}): every running sequence decodes one token a step`);
    this.maxPrefillTokens = positiveInt(options.maxPrefillTokens, maxPrefillTokensDefault(model.device, this.maxBatchTokens), 'maxPrefillTokens');
    if (this.maxPrefillTokens < this.maxBatchTokens)
      throw new RangeError(
        `createEngine: maxPrefillTokens (${this.maxPrefillTokens}) must be at least maxBatchTokens (${this.maxBatchTokens}): it is the budget of a step with nothing decoding (equal turns it off)`,
      );
    this.maxQueue = options.maxQueue ?? 256;
    if (!Number.isSafeInteger(this.maxQueue) || this.maxQueue < 0) throw new RangeError(`createEngine: maxQueue must be an integer >= 0, got ${options.maxQueue}`);
    const maxPositions = model.config.maxPositionEmbeddings;
    const maxContext = positiveInt(options.maxContext, Math.min(4096, maxPositions), 'maxContext');
    if (maxContext > maxPositions) throw new RangeError(`createEngine: maxContext ${maxContext} exceeds max_position_embeddings ${maxPositions}`);
    // The native batched step on the CPU and CUDA (its check and bench on an H200: bench/RESULTS.md,
    // issue 11); on HIP a Session a sequence unless 'native' is asked for (not yet run on an AMD GPU).
    const kind = options.backend ?? (model.device.startsWith('hip') ? 'session' : 'native');
    if (options.pipelineDecode !== undefined && typeof options.pipelineDecode !== 'boolean')
      throw new TypeError(`createEngine: pipelineDecode must be a boolean, got ${typeof options.pipelineDecode}`);
    if (options.pipelineDecode === true && kind !== 'native')
      throw new RangeError(`createEngine: pipelineDecode needs backend 'native' (a StepBackend of your own opts in with its pipelinesDecode)`);
    const pipelineDecode = options.pipelineDecode ?? pipelineDecodeDefault(model.device);
    if (kind === 'session' || kind === 'native') {
      const blockSize = positiveInt(options.blockSize, 16, 'blockSize');
      const kvBlocks = positiveInt(options.kvBlocks, this.maxSequences * blocksFor(maxContext, blockSize), 'kvBlocks');
      this.backend =
        kind === 'native'
          ? model.createBatchBackend({ kvBlocks, blockSize, maxSequences: this.maxSequences, ...(pipelineDecode ? { pipelineDecode: true } : {}) })
          : new SessionBackend(model, { kvBlocks, blockSize });
    } else if (typeof options.backend === 'object' && options.backend !== null && typeof options.backend.step === 'function') {
      this.backend = options.backend;
    } else throw new TypeError(`createEngine: backend must be 'native', 'session' or a StepBackend, got ${String(options.backend)}`);
    this.#pipelined = this.backend.pipelinesDecode === true && typeof this.backend.queuedAhead === 'function';
    // one sequence can hold at most the whole pool
    this.maxContext = Math.min(maxContext, this.backend.totalBlocks * this.backend.blockSize);
  }

  get model(): GptOssModel {
    return this.#model;
  }

  stats(): EngineStats {
    return {
      running: this.#running.length,
      waiting: this.#waiting.length,
      freeBlocks: this.#freeAtClose ?? this.backend.freeBlocks(),
      totalBlocks: this.backend.totalBlocks,
      steps: this.#steps,
      finished: this.#finished,
    };
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues a request; returns its stream at once. Throws, before anything is queued, on bad input
   * or options, ContextLengthError when the prompt cannot fit one sequence's context,
   * QueueFullError when maxQueue requests already wait, EngineClosedError after close().
   * The KV room is min(maxContext option or engine maxContext, prompt + maxTokens); a sequence
   * that fills it ends with finishReason 'context'.
   */
  generate(input: GenerateInput, options: EngineRequestOptions = {}): GenerationStream {
    if (this.#closed) throw new EngineClosedError();
    if (options !== null && typeof options === 'object' && (options as GenerateOptions).session !== undefined)
      throw new TypeError('engine.generate: options.session is not taken (the engine owns the KV cache)');
    const long = longPromptTexts(input, options);
    if (long === null) return this.#generateNow(input, options);
    // a long text prompt is encoded off the event loop first; what depends on its length (the
    // context and queue checks) then ends the stream with finishReason 'error' instead of throwing
    resolveGenerationOptions(this.#model, options, 'engine.generate', input);
    return afterEncoding(long, options, () => {
      if (this.#closed) throw new EngineClosedError();
      return this.#generateNow(input, options);
    });
  }

  #generateNow(input: GenerateInput, options: EngineRequestOptions): GenerationStream {
    const prepared = prepareGeneration(this.#model, input, options, 'engine.generate');
    const { prompt, maxTokens } = prepared;
    if (options.maxContext !== undefined && (!Number.isSafeInteger(options.maxContext) || options.maxContext < 1))
      throw new RangeError(`engine.generate: maxContext must be an integer >= 1, got ${options.maxContext}`);
    const limit = Math.min(this.maxContext, options.maxContext ?? Infinity);
    // a sampled token needs the prompt plus one position (as generate(): length < maxContext)
    if (prompt.length + (maxTokens > 0 ? 1 : 0) > limit) throw new ContextLengthError(prompt.length, maxTokens, limit);
    // it would wait (every sequence slot taken or others ahead of it) and the queue is full
    const mustWait = this.#running.length + this.#waiting.length >= this.maxSequences;
    if (mustWait && this.#waiting.length >= this.maxQueue) throw new QueueFullError(this.#waiting.length);
    const capacity = Math.min(limit, prompt.length + Math.max(1, maxTokens));

    const controller = new AbortController();
    const unlink = linkAbort(controller, options.signal);
    let sequence!: Sequence;
    const stream = new GenerationStream(
      controller,
      (emit) =>
        new Promise<GenerationResult>((resolve) => {
          sequence = new Sequence(prepared, capacity, controller.signal, unlink, new GenerationOutput(prepared, emit), resolve);
        }),
    );
    sequence.t0 = performance.now();
    this.#waiting.push(sequence);
    controller.signal.addEventListener('abort', () => this.#kick(), { once: true });
    this.#kick();
    return stream;
  }

  /** Resolves when nothing is running or waiting. */
  idle(): Promise<void> {
    if (this.#running.length === 0 && this.#waiting.length === 0 && this.#looping === null) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops taking requests, lets those running and waiting finish for up to `deadlineMs` (default
   * 10 s), then aborts the rest (finishReason 'abort') and releases the backend.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    await Promise.race([this.idle(), deadline]);
    clearTimeout(timer);
    // the loop ends them between steps (never under a step in flight)
    this.#abortEverything = true;
    this.#kick();
    await this.idle();
    if (this.#freeAtClose !== null) return; // closed already
    this.#freeAtClose = this.backend.freeBlocks();
    await this.backend.dispose();
  }

  #kick(): void {
    if (this.#looping) return;
    this.#looping = this.#loop().finally(() => {
      this.#looping = null;
      if (this.#waiting.length === 0 && this.#running.length === 0) {
        for (const wake of this.#idleWaiters.splice(0)) wake();
        return;
      }
      // again, unless every running sequence waits for its mask (its arrival kicks) and no request can join
      if (this.#running.some((s) => !s.maskWait) || (this.#waiting.length > 0 && this.#running.length < this.maxSequences && !this.#blocked)) this.#kick();
    });
  }

  #end(s: Sequence, reason: FinishReason | null): void {
    if (s.seq >= 0) this.backend.close(s.seq);
    const r = this.#running.indexOf(s);
    if (r >= 0) this.#running.splice(r, 1);
    const w = this.#waiting.indexOf(s);
    if (w >= 0) this.#waiting.splice(w, 1);
    if (s.phase !== 'done') this.#finished++;
    s.finish(reason);
  }

  async #loop(): Promise<void> {
    for (;;) {
      // leave: aborted requests, waiting or running
      for (const s of [...this.#waiting, ...this.#running]) if (s.signal.aborted || this.#abortEverything) this.#end(s, 'abort');
      // join: FIFO, while a sequence slot and the KV room for the head's whole context are free
      while (this.#waiting.length > 0 && this.#running.length < this.maxSequences) {
        const s = this.#waiting[0]!;
        const seq = this.backend.open(s.capacity, s.prepared.prompt);
        this.#blocked = seq === null;
        if (seq === null) break;
        this.#waiting.shift();
        s.seq = seq;
        // a prefix of the prompt the backend already holds (its prefix cache) is not prefilled again
        const cached = Math.min(this.backend.length?.(seq) ?? 0, Math.max(0, s.prepared.prompt.length - 1));
        for (let i = 0; i < cached; i++) s.history.push(s.prepared.prompt[i]!);
        s.cachedPrompt = cached;
        s.phase = 'prefill';
        this.#running.push(s);
        void s.output.maskPending(); // a raw-output format's first mask: computed while the prompt prefills
      }
      const items = this.#plan();
      if (items.length === 0) return;
      await this.#step(items);
      // let I/O (new requests, aborts, consumers) run between steps
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * One step's items: every decoding sequence's token, then prefill chunks up to the token budget:
   * maxBatchTokens while any sequence decodes, maxPrefillTokens when none does (nothing to delay).
   * When the backend queued a decode step ahead, exactly that step first: its sequences still decoding
   * (requests that joined meanwhile wait for the step after it).
   */
  #plan(): { s: Sequence; item: BatchItem }[] {
    const out: { s: Sequence; item: BatchItem }[] = [];
    if (this.#ahead.size > 0) {
      const ahead = this.#ahead;
      this.#ahead = new Set();
      for (const s of this.#running) if (s.phase === 'decode' && ahead.has(s) && !this.#awaitsMask(s)) out.push({ s, item: this.#decodeItem(s) });
      if (out.length > 0) return this.#askAhead(out);
    }
    let budget = this.maxBatchTokens;
    for (const s of this.#running) {
      if (s.phase !== 'decode' || this.#awaitsMask(s)) continue;
      out.push({ s, item: this.#decodeItem(s) });
      budget--;
    }
    if (out.length === 0) budget = this.maxPrefillTokens;
    for (const s of this.#running) {
      if (s.phase !== 'prefill' || budget <= 0) continue;
      const n = Math.min(s.pendingPrompt, budget);
      const at = s.position;
      const final = at + n === s.prepared.prompt.length;
      if (final && s.prepared.maxTokens > 0 && this.#awaitsMask(s)) continue;
      const sample = final && s.prepared.maxTokens > 0 ? { options: s.prepared.sample, uniform: s.prepared.rng.nextUniform() } : null;
      const extra = sample !== null ? this.#drawExtras(s) : {};
      out.push({ s, item: { seq: s.seq, tokens: Int32Array.from(s.prepared.prompt.slice(at, at + n)), sample, ...extra } });
      budget -= n;
    }
    return this.#askAhead(out);
  }

  /**
   * Whether the sequence's next draw waits for its mask (a response format's matcher state not seen before,
   * computed on the mask worker): it sits out this step, and the mask's arrival kicks the loop.
   */
  #awaitsMask(s: Sequence): boolean {
    if (s.maskWait) return true;
    const pending = s.output.maskPending();
    if (pending === null) return false;
    s.maskWait = true;
    const back = (): void => {
      s.maskWait = false;
      this.#kick();
    };
    pending.then(back, back);
    return true;
  }

  #decodeItem(s: Sequence): BatchItem {
    const uniform = s.nextUniform ?? s.prepared.rng.nextUniform();
    s.nextUniform = null;
    return { seq: s.seq, tokens: Int32Array.of(s.last), sample: { options: s.prepared.sample, uniform }, ...this.#drawExtras(s) };
  }

  /** A draw's logprobs request and bias (logit bias, penalties over the tokens drawn so far). */
  #drawExtras(s: Sequence): Pick<BatchItem, 'logprobs' | 'bias'> {
    const bias = s.output.nextBias();
    return { ...(s.prepared.logprobs !== undefined ? { logprobs: s.prepared.logprobs } : {}), ...(bias ? { bias } : {}) };
  }

  /**
   * Pipelined decode: in a step of decode tokens only, with no prompt left to prefill, each sequence
   * that goes on unless the id drawn now stops it (room for its output and its context) gives the
   * uniform of its next step as `next`, drawn now from its own generator (the order of its draws is
   * unchanged), so the backend can queue that step before this one's ids are back.
   */
  #askAhead(out: { s: Sequence; item: BatchItem }[]): { s: Sequence; item: BatchItem }[] {
    // A biased or masked draw is never queued ahead (its bias follows the id drawn now), nor one with logprobs (the
    // device reads them from its row after the draw, which a step queued ahead would overwrite); and a step queued
    // ahead runs alone before any other sequence's: with such a sequence decoding, nothing is queued ahead, so that
    // it is never left waiting. A sequence whose held part (response format, strict tool) begins with the id drawn
    // now gives a masked item next: the backend drops the step queued ahead and runs that one (drawsOneAStep).
    if (!this.#pipelined || this.#running.some((s) => s.phase === 'prefill' || (s.phase === 'decode' && s.output.drawsOneAStep))) return out;
    for (const { s, item } of out) {
      if (item.sample === null || s.output.tokens.length + 1 >= s.prepared.maxTokens || s.position + 2 >= s.capacity) continue;
      s.nextUniform = s.prepared.rng.nextUniform();
      item.next = s.nextUniform;
    }
    return out;
  }

  async #step(work: { s: Sequence; item: BatchItem }[]): Promise<void> {
    let ids: Int32Array;
    let logprobs: StepLogprobs['logprobs'] | null = null;
    try {
      const items = work.map((w) => w.item);
      if (items.some((item) => item.logprobs !== undefined)) ({ ids, logprobs } = await this.backend.stepLogprobs(items));
      else ids = await this.backend.step(items);
      this.#steps++;
      // the sequences whose next decode step the backend queued (those that asked, when it queued one)
      if (this.#pipelined && (this.backend.queuedAhead?.() ?? 0) > 0)
        for (const { s, item } of work) if (item.next !== undefined) this.#ahead.add(s);
    } catch (e) {
      for (const { s } of work) {
        s.output.fail(e);
        this.#end(s, null);
      }
      return;
    }
    for (const [i, { s, item }] of work.entries()) {
      if (s.phase === 'done') continue; // closed during the step (engine close)
      for (const t of item.tokens) s.history.push(t);
      if (item.sample === null) {
        if (s.pendingPrompt === 0) this.#end(s, 'length'); // maxTokens 0: only the prompt
        continue;
      }
      if (s.t1 === 0) s.t1 = performance.now();
      const id = ids[i]!;
      if (s.output.accept(id, logprobs?.[i])) this.#end(s, null);
      else if (s.output.tokens.length >= s.prepared.maxTokens) this.#end(s, 'length');
      else if (s.position + 1 >= s.capacity) this.#end(s, 'context'); // a decode step needs position + 1 < capacity, as generate()
      else {
        s.phase = 'decode';
        s.last = id;
      }
    }
  }
}
