// generate(): a prompt in, a stream of typed events and a final result out.
//
// The decode loop keeps logits on the device: the prompt goes in with Session.append (no logits
// copied back), each token is drawn by Session.sample with a uniform from the seeded PRNG, and only
// the token id crosses to the host. Every native call runs off the main thread, so the event loop
// stays free while a model generates.
import type { GptOssModel } from './model.js';
import { checkLogprobsCount, type Session, type TokenLogprobs } from './session.js';
import { drawBias, resolveBiasPlan, type BiasPlan, type LogitBias } from './penalties.js';
import { Constraint, resolveCallNames, resolveResponseFormat, resolveStrictTools, type ConstraintPlans, type ResponseFormat } from './grammar/constraint.js';
import { toTokenIds } from './token-ids.js';
import { createRng, randomSeed, resolveSampleOptions, type Seed, type Xoshiro128 } from './sampling.js';
import type { SampleOptions } from './session.js';
import { tokenizer, SPECIAL_TOKENS, offThreadTexts, withTextsEncoded } from './tokenizer.js';
import { renderConversation, conversationTexts, createHarmonyParser } from './harmony/index.js';
import type { Conversation, HarmonyEvent, ParsedMessage, ReasoningEffort, RenderOptions } from './harmony/index.js';

/** Token ids, plain text (encoded without special tokens), or a Harmony conversation. */
export type GenerateInput = ArrayLike<number> | string | Conversation;

export interface GenerateOptions {
  /** Most tokens to generate, the stop token included (default 4096; 0 only fills the cache). */
  maxTokens?: number;
  /** 0 = greedy (argmax, lowest id on ties). Default 1, as OpenAI recommends for gpt-oss. */
  temperature?: number;
  /** Default 0 = off. */
  topK?: number;
  /** Default 1 = off. */
  topP?: number;
  /** Default 0 = off. */
  minP?: number;
  /** Same seed, same input, same options: same tokens (on one device). Default: a random seed (see result.seed). */
  seed?: Seed;
  /**
   * Generation ends after one of these tokens (it is part of result.tokens; it is not fed back).
   * Default, for Harmony (conversation input or `parse: true`): <|return|> 200002 and <|call|>
   * 200012, plus the config's eos_token_id; not <|end|>, which ends an analysis message that the
   * final answer follows. For raw tokens or text: those and also <|end|> 200007 and
   * <|endoftext|> 199999, since raw completion has no turn structure to continue into.
   */
  stopTokens?: readonly number[];
  /** Aborting ends generation before the next forward pass; finishReason 'abort'. */
  signal?: AbortSignal;
  /** Conversation input only: replaces the system message's reasoning effort. */
  reasoningEffort?: ReasoningEffort;
  /** Conversation input only: how it is rendered (it always ends with `<|start|>assistant`). */
  render?: Pick<RenderOptions, 'dropAnalysis' | 'recipientPlacement'>;
  /**
   * Run in this session instead of a fresh one. The input is always the whole context: the
   * longest prefix the session already holds (from earlier generate calls on it) is kept and only
   * the rest is prefilled (the session records every token fed to it, by generate() or by hand).
   * The session is not disposed.
   */
  session?: Session;
  /** KV-cache capacity of the fresh session (default min(maxPositionEmbeddings, prompt + maxTokens)). */
  maxContext?: number;
  /** Parse the output as Harmony (default: true for conversation input, false otherwise). */
  parse?: boolean;
  /**
   * Report each drawn token's log-probability, and this many most likely alternatives (an integer
   * in [0, 20]), on its `token` event and in result.logprobs: natural logs of the model's own
   * distribution (the logits' log-softmax, before temperature, topK, topP and minP; as vLLM reports
   * them). Default: none. Each token's logits row is read (on the host; on CUDA with GPTOSS_CUDA_LOGPROBS=device on
   * the device), and tokens are drawn one native call each instead of in chunks.
   */
  logprobs?: number;
  /**
   * Added to the logits of the listed token ids before every draw (OpenAI's logit_bias: id -> bias in
   * [-100, 100]; -100 practically bans a token, +100 practically forces it).
   */
  logitBias?: Readonly<Record<number | string, number>>;
  /** Subtracted once from the logits of every token drawn so far in this generation ([-2, 2]; OpenAI's). */
  presencePenalty?: number;
  /** Subtracted from each token's logits times the number of times it was drawn so far ([-2, 2]; OpenAI's). */
  frequencyPenalty?: number;
  /**
   * Structured output (OpenAI's response_format): `{ type: 'json_object' }` (any JSON object) or
   * `{ type: 'json_schema', schema }` (lib/grammar/json-schema.ts says which schemas), enforced on every draw:
   * in Harmony mode on the final channel's message (which then ends with <|return|>; the reasoning before it is
   * free), otherwise on the whole output (which ends with a stop token). Default `{ type: 'text' }`: free.
   */
  responseFormat?: ResponseFormat;
  /**
   * Strict function calling (OpenAI's `strict: true` on a function tool): `{ name: parametersSchema }`. A call to one
   * of these functions (an assistant message to `functions.NAME`) is held on every draw to one JSON document the
   * schema accepts (the schemas responseFormat takes; null or undefined: no arguments, `{}`), then `<|call|>`; the
   * result's toolCalls carry the parsed arguments. Calls to other functions stay free. Needs parse (Harmony).
   */
  strictTools?: Readonly<Record<string, Record<string, unknown> | boolean | null | undefined>>;
  /**
   * For a prompt that ends inside a call's header, after `to=functions.` (OpenAI's tool_choice 'required' with several
   * tools, as the server renders it): the function name the generation writes is held to one of these, then the
   * header ends (<|constrain|> or <|message|>). Needs parse (Harmony).
   */
  toolChoiceNames?: readonly string[];
}

/**
 * 'length': maxTokens were generated. 'context': the KV cache (the session's or the request's
 * maxContext) is full; the conversation must shrink before it can go on (ChatSession's contextPolicy).
 */
export type FinishReason = 'stop' | 'length' | 'context' | 'abort' | 'tool-call' | 'error';

export interface ToolCall {
  /** e.g. 'functions.get_weather' */
  recipient: string;
  /** The recipient without 'functions.' */
  name: string;
  /** Parsed JSON arguments (undefined when `error` is set). */
  arguments: unknown;
  raw: string;
  channel?: string;
  contentType?: string;
  /** Why the arguments did not parse as JSON. */
  error?: string;
}

export interface GenerationResult {
  /** Generated token ids, the stop token included. */
  tokens: number[];
  /** The generated tokens decoded (special tokens as their text), the stop token left out. */
  text: string;
  /** Harmony mode: assistant text per channel (tool-call arguments are in toolCalls, not here). */
  channels: { analysis: string; commentary: string; final: string; [channel: string]: string };
  /** Harmony mode: the messages the model completed (or was cut in). */
  messages: ParsedMessage[];
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  /** The stop token that ended generation (finishReason 'stop' or 'tool-call'). */
  stopToken?: number;
  /** finishReason 'error': what went wrong. */
  error?: Error;
  /** The seed actually used (pass it back to reproduce a run that had none). */
  seed: Seed;
  usage: {
    promptTokens: number;
    completionTokens: number;
    /** Prompt tokens found already in the session's KV cache (not prefilled again). */
    cachedPromptTokens: number;
  };
  timings: { prefillMs: number; decodeMs: number; tokensPerSecond: number };
  /** With options.logprobs: one entry per token of `tokens`, in order. */
  logprobs?: TokenLogprobs[];
}

export type GenerationEvent =
  | {
      type: 'token';
      id: number;
      /** Position in the completion (0-based). */
      index: number;
      /** Text this token completed (UTF-8 across tokens is joined; special tokens as text). */
      text: string;
      /** With options.logprobs: the token's log-probability and the most likely alternatives. */
      logprobs?: TokenLogprobs;
    }
  | HarmonyEvent;

/** An AsyncIterable of events (single consumer) with the final result. */
export class GenerationStream implements AsyncIterable<GenerationEvent> {
  /** Resolves when generation ends; never rejects (failures give finishReason 'error'). */
  readonly result: Promise<GenerationResult>;
  readonly #queue: GenerationEvent[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  #iterating = false;
  readonly #controller: AbortController;

  /** @internal created by generate() */
  constructor(controller: AbortController, run: (emit: (e: GenerationEvent) => void) => Promise<GenerationResult>) {
    this.#controller = controller;
    this.result = run((e) => {
      this.#queue.push(e);
      this.#notify();
    }).finally(() => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The final result (the same promise as `result`). */
  done(): Promise<GenerationResult> {
    return this.result;
  }

  /** Ends generation before the next forward pass (finishReason 'abort'). */
  abort(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  /** Events in order, to one consumer. Leaving the loop early (break, throw) aborts generation. */
  async *[Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    if (this.#iterating) throw new Error('GenerationStream: already being iterated (events go to one consumer)');
    this.#iterating = true;
    try {
      for (;;) {
        while (this.#queue.length > 0) yield this.#queue.shift()!;
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      if (!this.#ended) this.abort();
    }
  }
}

function isConversation(input: GenerateInput): input is Conversation {
  return typeof input === 'object' && input !== null && !('length' in input) && Array.isArray((input as Conversation).messages);
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function withEffort(input: Conversation, options: GenerateOptions): Conversation {
  if (options.reasoningEffort === undefined) return input;
  if (input.system === false) throw new TypeError('generate: reasoningEffort needs a system message, but conversation.system is false');
  return { ...input, system: { ...input.system, reasoningEffort: options.reasoningEffort } };
}

function renderOptions(options: GenerateOptions): RenderOptions {
  const { dropAnalysis, recipientPlacement } = options.render ?? {};
  return {
    ...(dropAnalysis !== undefined ? { dropAnalysis } : {}),
    ...(recipientPlacement !== undefined ? { recipientPlacement } : {}),
  };
}

/** @internal The prompt token ids of generate()'s input and options. */
export function promptTokens(model: GptOssModel, input: GenerateInput, options: GenerateOptions): number[] {
  if (isConversation(input)) return renderConversation(withEffort(input, options), renderOptions(options));
  if (options.reasoningEffort !== undefined) throw new TypeError('generate: reasoningEffort applies to conversation input only');
  if (typeof input === 'string') return tokenizer.encode(input);
  if (typeof input !== 'object' || input === null || typeof input.length !== 'number')
    throw new TypeError('generate: input must be token ids, a string or a conversation ({ messages: [...] })');
  return Array.from(toTokenIds(input, model.config.vocabSize, 'generate', 'input'));
}

/**
 * @internal The texts of a prompt too long to encode on the event loop (null: encode inline).
 * generate(), ChatSession and the engine encode them on the tokenizer's worker thread first.
 */
export function longPromptTexts(input: GenerateInput, options: GenerateOptions): string[] | null {
  if (options === null || typeof options !== 'object') return null; // prepareGeneration names the error
  if (typeof input === 'string') return options.reasoningEffort !== undefined ? null : offThreadTexts([input]); // (that throws at once)
  if (isConversation(input)) {
    try {
      return offThreadTexts(conversationTexts(withEffort(input, options), renderOptions(options)));
    } catch {
      return null; // a malformed conversation: rendering it inline throws the error at once
    }
  }
  return null;
}

/**
 * @internal A stream for a prompt whose texts are encoded off the event loop first: `start` runs
 * once they are (synchronously, rendering from those results) and its stream is passed through.
 * What `start` throws (a prompt too long for the context, ...) ends this stream with finishReason
 * 'error'; an abort while encoding ends it with 'abort'.
 */
export function afterEncoding(texts: readonly string[], options: GenerateOptions, start: () => GenerationStream): GenerationStream {
  const seed = options.seed ?? randomSeed();
  const controller = new AbortController();
  const unlink = linkAbort(controller, options.signal);
  return new GenerationStream(controller, async (emit) => {
    const t0 = now();
    let inner: GenerationStream;
    try {
      inner = await withTextsEncoded(texts, () => {
        if (controller.signal.aborted) throw controller.signal;
        return start();
      });
    } catch (e) {
      unlink();
      const aborted = e === controller.signal;
      const out = new GenerationOutput({ prompt: [], parse: false, seed, stops: new Set() } as unknown as PreparedGeneration, emit);
      if (aborted) out.finishReason = 'abort';
      else out.fail(e);
      const t = now();
      return out.finish({ promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 }, { t0, t1: t, t2: t });
    }
    const onAbort = (): void => inner.abort(controller.signal.reason);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const e of inner) emit(e);
      return await inner.result;
    } finally {
      controller.signal.removeEventListener('abort', onAbort);
      unlink();
    }
  });
}

function checkIds(model: GptOssModel, ids: readonly number[], input: GenerateInput): void {
  const vocab = model.config.vocabSize;
  const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
  if (bad < 0) return;
  if (typeof input === 'object' && 'length' in input)
    throw new RangeError(`generate: input[${bad}] = ${ids[bad]} is not a token id of this model (vocab ${vocab})`);
  throw new RangeError(
    `generate: the o200k_harmony encoding of the input has token ${ids[bad]}, outside this model's vocabulary of ${vocab} (text and conversations need vocab ${tokenizer.vocabSize}; pass token ids instead)`,
  );
}

/** The GPU default of the prompt tokens one forward pass takes (engine: maxPrefillTokens). */
export const DEFAULT_MAX_PREFILL_TOKENS = 4096;
const CPU_PREFILL_CHUNK = 512; // generate() on the CPU: abort is checked between chunks of a long prompt

/**
 * Prompt tokens one forward pass takes when nothing else is running: generate()'s prefill chunk, and
 * createEngine's maxPrefillTokens when its options leave it out (at least `minimum`, the engine's
 * maxBatchTokens). On CUDA and HIP max(4096, minimum): a 2,000-token prompt in one pass runs the GEMMs
 * at ~1.6x the rate of 512-token passes (bench/RESULTS.md, maxPrefillTokens). On the CPU 512 for
 * generate() and `minimum` for the engine: larger passes measured no faster there, and abort is only
 * checked between them.
 */
export function maxPrefillTokensDefault(device: string, minimum = CPU_PREFILL_CHUNK): number {
  return /^(cuda|hip)(:\d+)?$/.test(device) ? Math.max(DEFAULT_MAX_PREFILL_TOKENS, minimum) : minimum;
}
// Decode steps a native call on a GPU (Session.stepSampleMany: queued back to back on the device, only
// the ids come back). The tokens of a chunk are emitted when it returns, one event-loop turn apart; an
// abort seen in between keeps the tokens emitted so far (the session is cut back to match). On the CPU
// a step is synchronous anyway, so one a call keeps abort and streaming per token.
const DECODE_CHUNK = 16;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const now = (): number => performance.now();

/** @internal A request checked and resolved: what generate() and the engine both start from. */
export interface PreparedGeneration {
  prompt: number[];
  sample: Required<SampleOptions>;
  maxTokens: number;
  parse: boolean;
  stops: Set<number>;
  seed: Seed;
  rng: Xoshiro128;
  /** options.logprobs: the alternatives each token reports (undefined: no logprobs). */
  logprobs: number | undefined;
  /** options.logitBias and the penalties (null: none); drawBias(bias, tokens) is a draw's. */
  bias: BiasPlan | null;
  /** options.responseFormat, options.strictTools and options.toolChoiceNames (null: none of them). */
  constraint: ConstraintPlans | null;
}

/** @internal Checks input and options (throws on bad ones, naming them) and resolves the defaults. */
export function prepareGeneration(model: GptOssModel, input: GenerateInput, options: GenerateOptions, fn = 'generate'): PreparedGeneration {
  const resolved = resolveGenerationOptions(model, options, fn, input);
  const prompt = promptTokens(model, input, options);
  if (prompt.length === 0) throw new RangeError(`${fn}: the prompt is empty`);
  checkIds(model, prompt, input);
  const maxPositions = model.config.maxPositionEmbeddings;
  if (prompt.length > maxPositions) throw new RangeError(`${fn}: prompt of ${prompt.length} tokens exceeds max_position_embeddings ${maxPositions}`);
  return { prompt, ...resolved };
}

/** @internal prepareGeneration's checks of the options alone (no prompt needed). */
export function resolveGenerationOptions(model: GptOssModel, options: GenerateOptions, fn: string, input?: GenerateInput): Omit<PreparedGeneration, 'prompt'> {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`${fn}: argument 'options' must be an object, got ${options === null ? 'null' : typeof options}`);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
    throw new TypeError(`${fn}: options.signal must be an AbortSignal`);
  if (options.session !== undefined) {
    const s = options.session as Partial<Session> | null;
    if (s === null || typeof s !== 'object' || typeof s.stepSampleMany !== 'function' || typeof s.append !== 'function')
      throw new TypeError(`${fn}: options.session must be a Session (model.createSession())`);
    if (s.disposed === true) throw new Error(`${fn}: options.session was disposed`);
  }
  const sample = resolveSampleOptions({ temperature: 1, ...options }, fn);
  const maxTokens = options.maxTokens ?? 4096;
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 0) throw new RangeError(`${fn}: maxTokens must be an integer >= 0, got ${maxTokens}`);
  const parse = options.parse ?? (input !== undefined && isConversation(input));
  const special = SPECIAL_TOKENS;
  // the default stops are Harmony's ids: a model with a smaller vocabulary can never draw them
  const vocab = model.config.vocabSize;
  const stops = new Set<number>(
    (options.stopTokens !== undefined ? toTokenIds(options.stopTokens, vocab, fn, 'stopTokens') : null) ??
      [special.return, special.call, ...model.config.eosTokenIds, ...(parse ? [] : [special.end, special.endoftext])].filter((id) => id < vocab),
  );
  const seed = options.seed ?? randomSeed();
  const logprobs = options.logprobs === undefined ? undefined : checkLogprobsCount(options.logprobs, fn, 'options.logprobs');
  const bias = resolveBiasPlan(options, vocab, fn);
  const format = resolveResponseFormat(options.responseFormat, parse, stops, vocab, fn);
  const tools = resolveStrictTools(options.strictTools, parse, vocab, fn);
  const name = resolveCallNames(options.toolChoiceNames, parse, vocab, fn);
  const constraint = format !== null || tools.size > 0 || name !== null ? { format, tools, name } : null;
  return { sample, maxTokens, parse, stops, seed, rng: createRng(seed), logprobs, bias, constraint };
}

/**
 * @internal The output side of one generation: takes drawn ids one at a time, emits the token and
 * Harmony events, and builds the result. generate() and the engine feed it the same way.
 */
export class GenerationOutput {
  readonly tokens: number[] = [];
  readonly #logprobs: TokenLogprobs[] = [];
  readonly #prepared: PreparedGeneration;
  readonly #emit: (e: GenerationEvent) => void;
  readonly #messages: ParsedMessage[] = [];
  readonly #toolCalls: ToolCall[] = [];
  readonly #channels: GenerationResult['channels'] = { analysis: '', commentary: '', final: '' };
  readonly #parser: ReturnType<typeof createHarmonyParser> | null;
  readonly #decoder = tokenizer.createStreamDecoder();
  readonly #constraint: Constraint | null;
  #text = '';
  finishReason: FinishReason = 'length';
  stopToken: number | undefined;
  error: Error | undefined;
  #ended = false;

  constructor(prepared: PreparedGeneration, emit: (e: GenerationEvent) => void) {
    this.#prepared = prepared;
    this.#emit = emit;
    this.#constraint = prepared.constraint ? new Constraint(prepared.constraint) : null;
    this.#parser = prepared.parse ? createHarmonyParser() : null;
    if (this.#parser) {
      // Prime the parser with the open message header the prompt ends in (`<|start|>assistant`).
      const special = SPECIAL_TOKENS;
      const prompt = prepared.prompt;
      const start = prompt.lastIndexOf(special.start);
      const tail = start < 0 ? [] : prompt.slice(start);
      // (a prompt may go on into the message: a forced tool call ends in `<|message|>`)
      if (tail.every((t) => t === special.start || !tokenizer.isSpecial(t) || t === special.channel || t === special.constrain || t === special.message))
        this.#onHarmony(this.#parser.pushAll(tail)); // a header the prompt completes starts its message now
    }
  }

  #onHarmony(events: HarmonyEvent[]): void {
    for (const e of events) {
      if (this.#constraint) {
        if (e.type === 'message-start' && e.role === 'assistant') this.#constraint.begin(e);
        else if (e.type === 'message-end') this.#constraint.end();
      }
      if (e.type === 'text' && e.role === 'assistant' && e.channel !== undefined && e.recipient === undefined)
        this.#channels[e.channel] = (this.#channels[e.channel] ?? '') + e.delta;
      else if (e.type === 'message-end') {
        const { type: _type, ...m } = e;
        this.#messages.push(m);
      } else if (e.type === 'tool-call') {
        const { type: _type, ...call } = e;
        this.#toolCalls.push(call);
      } else if (e.type === 'tool-call-error') {
        const { type: _type, ...call } = e;
        this.#toolCalls.push({ ...call, arguments: undefined });
      }
      this.#emit(e);
    }
  }

  /**
   * Takes a drawn id (and its log-probabilities, when the generation asked for them); true when it
   * was a stop token (generation ends; finishReason set).
   */
  accept(id: number, logprobs?: TokenLogprobs | null): boolean {
    this.tokens.push(id);
    const violation = this.#constraint?.accept(id) ?? null;
    const isStop = this.#prepared.stops.has(id);
    const piece = this.#decoder.push(id);
    if (!isStop) this.#text += piece;
    if (this.#prepared.logprobs !== undefined && logprobs) {
      this.#logprobs.push(logprobs);
      this.#emit({ type: 'token', id, index: this.tokens.length - 1, text: piece, logprobs });
    } else {
      this.#emit({ type: 'token', id, index: this.tokens.length - 1, text: piece });
    }
    if (this.#parser) this.#onHarmony(this.#parser.push(id));
    // a step backend that dropped what the draw asked for ends the generation with an error, not a silent answer
    const broken = violation ?? (this.#prepared.logprobs !== undefined && !logprobs ? new Error('the step backend returned no logprobs for a draw that asked for them') : null);
    if (broken) {
      this.fail(broken);
      return true;
    }
    if (isStop) {
      this.stopToken = id;
      this.finishReason = id === SPECIAL_TOKENS.call ? 'tool-call' : 'stop';
    }
    return isStop;
  }

  /** Whether the next draw is held to a response format or a strict tool's parameters (it needs its mask). */
  get constrained(): boolean {
    return this.#constraint?.active ?? false;
  }

  /**
   * Whether the next draw goes one a native call (generate()) / is never queued ahead (the engine): it needs something
   * the host works out first (a bias, a mask) or reads right after (logprobs, from the row before the next step
   * overwrites it). A generation with a response format or strict tools draws in chunks / queued ahead until a held
   * part begins: its <|message|> ends generate()'s chunk, and on the engine the masked item that follows is not the
   * step queued ahead, which the backend then drops and runs as the plain step.
   */
  get drawsOneAStep(): boolean {
    return this.#prepared.bias !== null || this.#prepared.logprobs !== undefined || this.constrained;
  }

  /**
   * null when the next draw's bias is at hand; else a promise to await first: the response format's mask for a
   * matcher state not seen before, computed on the mask worker (a walk of the vocabulary, too long for the event loop).
   */
  maskPending(): Promise<unknown> | null {
    return this.#constraint?.pending() ?? null;
  }

  /**
   * The next draw's bias: the logit bias and penalties over the tokens drawn so far, and the response format's
   * mask while the output is constrained (undefined: none).
   */
  nextBias(): LogitBias | undefined {
    const bias = drawBias(this.#prepared.bias, this.tokens);
    const allow = this.#constraint?.mask();
    if (allow === undefined) return bias;
    return { ids: bias?.ids ?? new Int32Array(0), deltas: bias?.deltas ?? new Float32Array(0), allow };
  }

  /** Generation failed: finishReason 'error' and an error event. */
  fail(e: unknown): void {
    this.finishReason = 'error';
    this.error = e instanceof Error ? e : new Error(String(e));
    this.#emit({ type: 'error', message: this.error.message, token: null });
  }

  /** Flushes the decoder and the parser (a message cut by length/abort closes with stop 'eos') and builds the result. */
  finish(usage: GenerationResult['usage'], timings: { t0: number; t1: number; t2: number }): GenerationResult {
    if (this.#ended) throw new Error('GenerationOutput.finish: called twice');
    this.#ended = true;
    const rest = this.#decoder.flush();
    if (this.stopToken === undefined) this.#text += rest;
    // a header cut by length/abort/context is no error: finishReason says why the output ends there
    const cut = this.finishReason === 'length' || this.finishReason === 'abort' || this.finishReason === 'context';
    if (this.#parser) this.#onHarmony(this.#parser.end({ cut }));
    const decodeMs = timings.t2 - timings.t1;
    return {
      tokens: this.tokens,
      text: this.#text,
      channels: this.#channels,
      messages: this.#messages,
      toolCalls: this.#toolCalls,
      finishReason: this.finishReason,
      ...(this.stopToken !== undefined ? { stopToken: this.stopToken } : {}),
      ...(this.error ? { error: this.error } : {}),
      seed: this.#prepared.seed,
      usage,
      timings: { prefillMs: timings.t1 - timings.t0, decodeMs, tokensPerSecond: decodeMs > 0 ? (this.tokens.length * 1000) / decodeMs : 0 },
      ...(this.#prepared.logprobs !== undefined ? { logprobs: this.#logprobs } : {}),
    };
  }
}

/** @internal Links an outer AbortSignal to a fresh controller; returns the unlink. */
export function linkAbort(controller: AbortController, outer: AbortSignal | undefined): () => void {
  const onOuterAbort = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onOuterAbort, { once: true });
  return () => outer?.removeEventListener('abort', onOuterAbort);
}

/** Starts generating; returns at once. Bad input or options throw here, before anything runs. */
export function generate(model: GptOssModel, input: GenerateInput, options: GenerateOptions = {}): GenerationStream {
  const long = longPromptTexts(input, options);
  if (long === null) return startGeneration(model, input, options);
  resolveGenerationOptions(model, options, 'generate', input); // bad options still throw here
  return afterEncoding(long, options, () => startGeneration(model, input, options));
}

/** @internal generate() with a hook that runs on the result before it resolves (ChatSession). */
export function startGeneration(
  model: GptOssModel,
  input: GenerateInput,
  options: GenerateOptions,
  beforeResolve?: (result: GenerationResult) => void,
): GenerationStream {
  const prepared = prepareGeneration(model, input, options);
  const { prompt, sample, maxTokens, stops, rng, logprobs } = prepared;
  const own = options.session === undefined;
  if (!own && options.session!.generating) throw new Error('generate: the session is already generating');
  const maxPositions = model.config.maxPositionEmbeddings;
  const session = options.session ?? model.createSession({ maxContext: options.maxContext ?? Math.min(maxPositions, prompt.length + Math.max(1, maxTokens)) });
  if (prompt.length > session.maxContext) {
    if (own) void session.dispose();
    throw new RangeError(`generate: prompt of ${prompt.length} tokens does not fit the session's context of ${session.maxContext}`);
  }
  session.generating = true;

  const controller = new AbortController();
  const unlink = linkAbort(controller, options.signal);
  const signal = controller.signal;

  return new GenerationStream(controller, async (emit) => {
    const t0 = now();
    let t1 = t0;
    const out = new GenerationOutput(prepared, emit);
    const tokens = out.tokens;
    let cachedPromptTokens = 0;

    try {
      // Prompt: keep the longest prefix the session holds, prefill the rest. When the whole prompt is
      // cached the last prompt token is run again: sample() reads the logits of the most recent forward.
      let keep = commonPrefix(session.tokens, prompt);
      if (maxTokens > 0) keep = Math.min(keep, prompt.length - 1);
      cachedPromptTokens = keep;
      void out.maskPending(); // a raw-output format's first mask: computed on its worker while the prompt prefills
      if (session.length !== keep) await session.truncate(keep);
      const prefillChunk = maxPrefillTokensDefault(model.device);
      for (let at = keep; at < prompt.length && !signal.aborted; at += prefillChunk) await session.append(prompt.slice(at, at + prefillChunk));
      t1 = now();

      // The first id is drawn from the prompt's logits; after that each step appends the previous id
      // and draws the next, DECODE_CHUNK steps a native call. The last drawn id is never fed back:
      // nothing reads its logits.
      let last: number | null = null;
      const accept = (id: number, lp?: TokenLogprobs): boolean => {
        if (out.accept(id, lp)) return true;
        last = id;
        return false;
      };
      // with logprobs: the log-probabilities of the row `id` was just drawn from
      const withLogprobs = async (id: number): Promise<TokenLogprobs | undefined> =>
        logprobs === undefined ? undefined : session.logprobs(id, logprobs);
      const stopIds = [...stops];
      // A constrained part (a response format's final message, a strict tool's arguments) starts after a header's
      // <|message|>: chunks stop there, so that its draws go one a call with their masks. The uniforms a chunk drew
      // and did not use are the next steps', in order (the same stream of uniforms as one step a call, as the engine).
      const chunkStops = prepared.constraint !== null && prepared.parse ? [...stopIds, SPECIAL_TOKENS.message] : stopIds;
      const unusedUniforms: number[] = [];
      const nextUniform = (): number => unusedUniforms.shift() ?? rng.nextUniform();
      for (;;) {
        if (signal.aborted) {
          out.finishReason = 'abort';
          break;
        }
        if (tokens.length >= maxTokens) break; // 'length'
        if (last === null) {
          if (session.length >= session.maxContext) {
            out.finishReason = 'context';
            break;
          }
          await out.maskPending();
          const id = await session.sample(sample, nextUniform(), out.nextBias());
          if (accept(id, await withLogprobs(id))) break;
          continue;
        }
        // a step needs the position after it free, as before (length + 1 < maxContext)
        const chunk = model.device === 'cpu' ? 1 : DECODE_CHUNK;
        const room = session.maxContext - 1 - session.length;
        if (room <= 0) {
          out.finishReason = 'context';
          break;
        }
        const input: number = last;
        if (out.drawsOneAStep) {
          // one step a call: the logits each id is drawn from are read, and its bias (which follows the ids
          // drawn so far) or mask added, before the next step
          await out.maskPending();
          const id = await session.stepSample(input, sample, nextUniform(), out.nextBias());
          if (accept(id, await withLogprobs(id))) break;
          continue;
        }
        const count = Math.min(chunk, maxTokens - tokens.length, room);
        const uniforms = Array.from({ length: count }, nextUniform);
        const ids = await session.stepSampleMany(input, sample, uniforms, chunkStops);
        unusedUniforms.unshift(...uniforms.slice(ids.length));
        let stopped = false;
        for (let j = 0; j < ids.length && !stopped; j++) {
          stopped = accept(ids[j]!);
          if (stopped || j + 1 === ids.length) break;
          await nextTurn(); // the consumer sees this token (and may abort) before the next is emitted
          if (signal.aborted) {
            // aborted while the chunk ran: report nothing past this id, and drop what was appended after it
            await session.truncate(session.length - (ids.length - 1 - j));
            break;
          }
        }
        if (stopped) break;
      }
    } catch (e) {
      out.fail(e);
    }
    const t2 = now();
    session.generating = false;
    unlink();
    if (own) await session.dispose().catch(() => undefined);
    const result = out.finish({ promptTokens: prompt.length, completionTokens: tokens.length, cachedPromptTokens }, { t0, t1, t2 });
    beforeResolve?.(result);
    return result;
  });
}
