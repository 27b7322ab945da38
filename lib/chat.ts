// ChatSession: a Harmony conversation kept across turns over one KV cache.
//
// Each turn renders the whole conversation and hands it to generate() with the chat's session;
// generate() keeps the longest prefix already in the cache and prefills only the rest. Rendering in
// full (rather than appending tokens) keeps the cache equal to what the model was trained to see:
// earlier analysis is dropped as Harmony says, <|return|> becomes <|end|> in history, and text the
// model produced in a non-canonical tokenisation is re-encoded; the cache simply diverges there.
import type { GptOssModel } from './model.js';
import type { Session } from './session.js';
import { promptTokens, startGeneration, longPromptTexts, resolveGenerationOptions, afterEncoding, type GenerateOptions, type GenerationResult, type GenerationStream } from './generate.js';
import type { Conversation, DeveloperOptions, DropAnalysisMode, Message, ParsedMessage, SystemOptions } from './harmony/index.js';
import { tokenizer } from './tokenizer.js';
import { ContextLengthError } from './engine/errors.js';

export interface ChatSessionOptions {
  /** System message options (default: the Harmony default system message); false: none. */
  system?: SystemOptions | false;
  /** Developer message: instructions and function tools. */
  developer?: DeveloperOptions;
  /** Earlier history to continue from. */
  messages?: Message[];
  /** KV-cache capacity (default min(4096, max_position_embeddings)). */
  maxContext?: number;
  /** Options every turn starts from (a turn's own options override them). */
  defaults?: ChatTurnOptions;
  /**
   * Which earlier analysis is left out of the rendering. Default 'completed-turns': analysis that a
   * final answer followed. (openai/harmony's own rule, 'harmony', drops it only while the last
   * assistant message is final, so a turn that ends in a tool call brings every earlier turn's
   * analysis back and the cache has to be refilled from the first of them.)
   */
  dropAnalysis?: DropAnalysisMode;
  /**
   * What a turn does when the conversation and the room for its reply no longer fit maxContext:
   * 'drop-oldest' (default) removes the oldest turns from `messages` (a user message and what
   * answered it; the system and developer messages always stay), as chat UIs do; 'error' throws a
   * ContextLengthError and changes nothing. Either way a later send() works again.
   */
  contextPolicy?: 'drop-oldest' | 'error';
  /** Tokens kept free for a reply when deciding what fits (default min(the turn's maxTokens, maxContext / 4)). */
  contextReserve?: number;
  /** Called with the messages 'drop-oldest' removed, before the turn runs. */
  onContextTrim?: (dropped: Message[]) => void;
}

/** generate() options for one turn (the chat owns the session and the parsing). */
export type ChatTurnOptions = Omit<GenerateOptions, 'session' | 'parse' | 'maxContext' | 'render'>;

export class ChatSession {
  readonly model: GptOssModel;
  system: SystemOptions | false | undefined;
  developer: DeveloperOptions | undefined;
  /** The conversation so far (user, assistant, tool messages). */
  readonly messages: Message[];
  defaults: ChatTurnOptions;
  dropAnalysis: DropAnalysisMode;
  /** The last turn's result. */
  lastResult: GenerationResult | undefined;
  contextPolicy: 'drop-oldest' | 'error';
  contextReserve: number | undefined;
  onContextTrim: ((dropped: Message[]) => void) | undefined;
  /** Messages removed from the front of the history so far (contextPolicy 'drop-oldest'). */
  droppedMessages = 0;
  readonly #session: Session;
  #turn: GenerationStream | null = null;

  constructor(model: GptOssModel, options: ChatSessionOptions = {}) {
    this.model = model;
    this.system = options.system;
    this.developer = options.developer;
    this.messages = [...(options.messages ?? [])];
    this.defaults = options.defaults ?? {};
    this.dropAnalysis = options.dropAnalysis ?? 'completed-turns';
    this.contextPolicy = options.contextPolicy ?? 'drop-oldest';
    if (this.contextPolicy !== 'drop-oldest' && this.contextPolicy !== 'error')
      throw new RangeError(`ChatSession: contextPolicy must be 'drop-oldest' or 'error', got ${String(options.contextPolicy)}`);
    this.contextReserve = options.contextReserve;
    this.onContextTrim = options.onContextTrim;
    this.#session = model.createSession(options.maxContext !== undefined ? { maxContext: options.maxContext } : {});
  }

  /** The KV-cache session the turns run in. */
  get session(): Session {
    return this.#session;
  }

  /** Tokens in the KV cache now (the rendered conversation up to the last generated token). */
  get cachedTokens(): readonly number[] {
    return this.#session.tokens;
  }

  /** Sends a user message (or messages) and streams the reply; history is updated before `result` resolves. */
  stream(input: string | Message | Message[], options: ChatTurnOptions = {}): GenerationStream {
    if (typeof input !== 'string' && (input === null || typeof input !== 'object'))
      throw new TypeError(`ChatSession.send: argument 'input' must be a string, a message or an array of messages, got ${input === null ? 'null' : typeof input}`);
    const added = typeof input === 'string' ? [{ role: 'user' as const, content: input }] : Array.isArray(input) ? input : [input];
    return this.#run(added, options);
  }

  /** Sends a user message (or messages); resolves to the reply once it is complete. */
  send(input: string | Message | Message[], options: ChatTurnOptions = {}): Promise<GenerationResult> {
    return this.stream(input, options).result;
  }

  /**
   * Answers a tool call and lets the model continue. `name` is the call's recipient
   * ('functions.get_weather') or its bare name ('get_weather', taken as functions.get_weather);
   * a non-string result is sent as JSON.
   */
  sendToolResult(name: string, result: unknown, options: ChatTurnOptions = {}): Promise<GenerationResult> {
    return this.streamToolResult(name, result, options).result;
  }

  streamToolResult(name: string, result: unknown, options: ChatTurnOptions = {}): GenerationStream {
    const author = name.includes('.') ? name : `functions.${name}`;
    const content = typeof result === 'string' ? result : JSON.stringify(result);
    return this.#run([{ role: 'tool', name: author, content }], options);
  }

  #run(added: Message[], options: ChatTurnOptions): GenerationStream {
    if (this.#turn) throw new Error('ChatSession: a turn is still running (await its result first)');
    const turnOptions: GenerateOptions = { ...this.defaults, ...options, session: this.#session, parse: true, render: { dropAnalysis: this.dropAnalysis } };
    // Long texts (a pasted document) are encoded off the event loop first; the turn (context policy,
    // rendering) then runs from those results. What it throws ends the stream with finishReason 'error'.
    const long = longPromptTexts(this.#conversationOf(this.messages, added), turnOptions);
    if (long === null) return this.#runNow(added, turnOptions);
    resolveGenerationOptions(this.model, turnOptions, 'ChatSession', this.#conversationOf(this.messages, added));
    const turn = afterEncoding(long, turnOptions, () => {
      this.#turn = null;
      return this.#runNow(added, turnOptions);
    });
    this.#turn = turn;
    void turn.result.finally(() => {
      if (this.#turn === turn) this.#turn = null;
    });
    return turn;
  }

  #conversationOf(history: Message[], added: Message[]): Conversation {
    return {
      ...(this.system !== undefined ? { system: this.system } : {}),
      ...(this.developer !== undefined ? { developer: this.developer } : {}),
      messages: [...history, ...added],
    };
  }

  #runNow(added: Message[], turnOptions: GenerateOptions): GenerationStream {
    const conversationOf = (history: Message[]): Conversation => this.#conversationOf(history, added);
    // Context policy: the rendering plus room for a reply must fit the session.
    const maxContext = this.#session.maxContext;
    const reserve = Math.max(1, Math.min(turnOptions.maxTokens ?? 4096, this.contextReserve ?? Math.floor(maxContext / 4)));
    let history = this.messages;
    let length = promptTokens(this.model, conversationOf(history), turnOptions).length;
    if (length + reserve > maxContext) {
      if (this.contextPolicy === 'error') throw new ContextLengthError(length, reserve, maxContext);
      // Drop whole turns from the front: up to the next user message after the first.
      let cut = 0;
      while (length + reserve > maxContext && cut < history.length) {
        let next = cut + 1;
        while (next < history.length && history[next]!.role !== 'user') next++;
        cut = next;
        length = promptTokens(this.model, conversationOf(history.slice(cut)), turnOptions).length;
      }
      if (length + reserve > maxContext) throw new ContextLengthError(length, reserve, maxContext);
      const dropped = this.messages.splice(0, cut);
      this.droppedMessages += dropped.length;
      history = this.messages;
      this.onContextTrim?.(dropped);
    }
    const conversation = conversationOf(history);
    let finished = false;
    const turn = startGeneration(this.model, conversation, turnOptions, (r) => {
      finished = true;
      this.#turn = null;
      this.lastResult = r;
      this.messages.push(...added);
      if (r.finishReason === 'error' || r.finishReason === 'abort') return; // the partial reply is dropped
      this.messages.push(...replyMessages(r));
    });
    if (!finished) this.#turn = turn;
    return turn;
  }

  async dispose(): Promise<void> {
    if (this.#turn) {
      this.#turn.abort();
      await this.#turn.result;
    }
    await this.#session.dispose();
  }
}

/** The assistant messages of a reply, as history; output that never formed a message becomes a final one. */
function replyMessages(r: GenerationResult): Message[] {
  const out: Message[] = r.messages
    .filter((m: ParsedMessage) => m.role === 'assistant')
    .map((m: ParsedMessage) => ({
      role: 'assistant' as const,
      content: m.content,
      ...(m.channel !== undefined ? { channel: m.channel } : {}),
      ...(m.recipient !== undefined ? { recipient: m.recipient } : {}),
      ...(m.contentType !== undefined ? { contentType: m.constrained ? `<|constrain|>${m.contentType}` : m.contentType } : {}),
    }));
  if (out.length === 0 && r.tokens.length > 0) {
    const plain = r.tokens.filter((t) => t !== r.stopToken && !tokenizer.isSpecial(t));
    out.push({ role: 'assistant', channel: 'final', content: tokenizer.decode(plain) });
  }
  return out;
}
