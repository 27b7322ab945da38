// One model turn as the OpenAI APIs see it: the engine's Harmony events turned into reasoning text,
// answer text and function calls, with `stop` strings applied to the answer. Both the Chat
// Completions and the Responses serving code read a turn through this.
import type { GenerationStream, GenerationResult } from '../generate.js';
import type { TokenLogprobs } from '../session.js';
import { randomBytes } from 'node:crypto';
import { TokenLog, type LoggedToken } from './logprobs.js';

export type TurnDelta =
  | { type: 'reasoning'; text: string }
  /** `tokens`: with logprobs, the answer's tokens whose text starts in this delta (each once). */
  | { type: 'content'; text: string; tokens?: LoggedToken[] }
  | { type: 'tool-call-start'; index: number; callId: string; name: string }
  | { type: 'tool-call-delta'; index: number; text: string };

export interface TurnToolCall {
  callId: string;
  name: string;
  arguments: string;
}

export interface TurnResult {
  content: string;
  reasoning: string;
  toolCalls: TurnToolCall[];
  /** 'context': the sequence's KV room (the model's context) ran out before max tokens. */
  finishReason: 'stop' | 'length' | 'context' | 'tool_calls' | 'abort' | 'error';
  error?: Error;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  /** With logprobs: the tokens of `content` (the answer), in order. */
  contentTokens?: LoggedToken[];
  raw: GenerationResult;
}

export const newId = (prefix: string): string => `${prefix}${randomBytes(12).toString('hex')}`;

/** Characters of text to hold back while a stop string could still begin in them. */
const stopHold = (stops: string[]): number => stops.reduce((m, s) => Math.max(m, s.length - 1), 0);

/** Where the first stop string starts in text (-1: none), looking only where one could end past `sent`. */
function firstStop(text: string, stops: string[], sent: number): number {
  let cut = -1;
  for (const s of stops) {
    const at = text.indexOf(s, Math.max(0, sent - s.length));
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut;
}

/**
 * Reads a turn's events; yields deltas and returns the result. `stops`: strings that end the answer
 * (not included); the text that could still begin one is held back until it cannot.
 */
export async function* readTurn(stream: GenerationStream, stops: string[] = []): AsyncGenerator<TurnDelta, TurnResult> {
  let content = '';
  let sent = 0;
  let reasoning = '';
  let reasoningTokens = 0;
  let channel: string | undefined;
  let inToolCall = -1;
  let stoppedByString = false;
  const calls: TurnToolCall[] = [];
  const hold = stopHold(stops);
  // With logprobs: the tokens since the last Harmony event (a token's events follow it; a token whose bytes end
  // mid-character has none of its own), given to the answer when a final-channel text event takes them.
  const log = new TokenLog();
  let logged = false;
  let unplaced: { id: number; logprobs: TokenLogprobs }[] = [];
  const flushContent = function* (upTo: number): Generator<TurnDelta> {
    if (upTo > sent) {
      yield { type: 'content', text: content.slice(sent, upTo), ...(logged ? { tokens: log.take(upTo) } : {}) };
      sent = upTo;
    }
  };
  for await (const e of stream) {
    if (stoppedByString) continue;
    if (e.type === 'token') {
      if (channel === 'analysis') reasoningTokens++;
      if (e.logprobs) {
        logged = true;
        unplaced.push({ id: e.id, logprobs: e.logprobs });
      }
      continue;
    }
    const taken = unplaced;
    unplaced = [];
    if (e.type === 'message-start') {
      channel = e.channel;
      if (e.recipient?.startsWith('functions.')) {
        inToolCall = calls.length;
        const call = { callId: newId('call_'), name: e.recipient.slice('functions.'.length), arguments: '' };
        calls.push(call);
        yield { type: 'tool-call-start', index: inToolCall, callId: call.callId, name: call.name };
      }
    } else if (e.type === 'message-end') {
      channel = undefined;
      inToolCall = -1;
    } else if (e.type === 'text' && e.role === 'assistant') {
      if (e.recipient !== undefined) {
        if (inToolCall >= 0) {
          calls[inToolCall]!.arguments += e.delta;
          yield { type: 'tool-call-delta', index: inToolCall, text: e.delta };
        }
      } else if (e.channel === 'analysis') {
        reasoning += e.delta;
        yield { type: 'reasoning', text: e.delta };
      } else {
        for (const t of taken) log.add(t.id, t.logprobs, content.length);
        content += e.delta;
        const cut = firstStop(content, stops, sent);
        if (cut >= 0) {
          content = content.slice(0, cut);
          yield* flushContent(cut);
          stoppedByString = true;
          stream.abort();
        } else yield* flushContent(content.length - hold);
      }
    }
  }
  yield* flushContent(content.length);
  const raw = await stream.result;
  let finishReason: TurnResult['finishReason'];
  if (stoppedByString) finishReason = 'stop';
  else if (raw.finishReason === 'tool-call' || (raw.finishReason === 'stop' && calls.length > 0)) finishReason = 'tool_calls';
  else finishReason = raw.finishReason;
  return {
    content,
    reasoning,
    toolCalls: calls,
    finishReason,
    ...(raw.error ? { error: raw.error } : {}),
    promptTokens: raw.usage.promptTokens,
    completionTokens: raw.usage.completionTokens,
    reasoningTokens,
    ...(logged ? { contentTokens: log.upTo(content.length) } : {}),
    raw,
  };
}

/** A piece of /v1/completions text; `tokens`: with logprobs, the tokens whose text starts in it (each once). */
export interface TextDelta {
  text: string;
  tokens?: LoggedToken[];
}

export interface TextResult {
  text: string;
  /** With logprobs: the tokens of `text`, in order. */
  tokens?: LoggedToken[];
  finishReason: 'stop' | 'length' | 'context' | 'abort' | 'error';
  error?: Error;
  promptTokens: number;
  completionTokens: number;
  raw: GenerationResult;
}

/**
 * Reads a raw (unparsed) generation as text for /v1/completions: yields text as it becomes final and returns the
 * result. The stop token's text is left out (as result.text leaves it), so each token's text is held back until the
 * next one shows it was not the last; `stops` as in readTurn.
 */
export async function* readText(stream: GenerationStream, stops: string[] = []): AsyncGenerator<TextDelta, TextResult> {
  let text = '';
  let sent = 0;
  let held: string | null = null;
  let stoppedByString = false;
  const hold = stopHold(stops);
  const log = new TokenLog();
  let logged = false;
  const add = function* (piece: string): Generator<TextDelta> {
    text += piece;
    const cut = firstStop(text, stops, sent);
    if (cut >= 0) {
      text = text.slice(0, cut);
      stoppedByString = true;
      stream.abort();
    }
    const upTo = stoppedByString ? text.length : text.length - hold;
    if (upTo > sent) {
      yield { text: text.slice(sent, upTo), ...(logged ? { tokens: log.take(upTo) } : {}) };
      sent = upTo;
    }
  };
  for await (const e of stream) {
    if (stoppedByString || e.type !== 'token') continue;
    if (held !== null) yield* add(held);
    if (e.logprobs) {
      logged = true;
      log.add(e.id, e.logprobs, text.length); // its text follows everything before it (held was just added)
    }
    held = e.text;
  }
  const raw = await stream.result;
  if (!stoppedByString) {
    // raw.text is every piece but the stop token's, then the decoder's flush: what is left of it after ours
    yield* add(raw.text.slice(text.length));
    if (!stoppedByString && text.length > sent) {
      yield { text: text.slice(sent), ...(logged ? { tokens: log.take(text.length) } : {}) };
      sent = text.length;
    }
  }
  const finishReason: TextResult['finishReason'] = stoppedByString ? 'stop' : raw.finishReason === 'tool-call' ? 'stop' : raw.finishReason;
  return {
    text,
    ...(logged ? { tokens: log.upTo(text.length) } : {}),
    finishReason,
    ...(raw.error ? { error: raw.error } : {}),
    promptTokens: raw.usage.promptTokens,
    completionTokens: raw.usage.completionTokens,
    raw,
  };
}

/** Runs a reader (readTurn, readText) to its end; its result. */
export async function drain<T, R>(reader: AsyncGenerator<T, R>): Promise<R> {
  let next = await reader.next();
  while (!next.done) next = await reader.next();
  return next.value;
}

/**
 * Several readers (a request's choices) as one sequence, each item as soon as its reader yields it: `{ index, delta }`
 * for a reader's items, `{ index, result }` once for its end. The caller may stop early (a failed choice); the other
 * readers are then left to their streams' abort.
 */
export async function* interleave<T, R>(readers: AsyncGenerator<T, R>[]): AsyncGenerator<{ index: number; delta: T } | { index: number; result: R }> {
  type Next = { index: number; next: IteratorResult<T, R> };
  const pending = new Map<number, Promise<Next>>();
  const arm = (index: number): void => void pending.set(index, readers[index].next().then((next) => ({ index, next })));
  readers.forEach((_, i) => arm(i));
  while (pending.size > 0) {
    const { index, next } = await Promise.race(pending.values());
    if (next.done) {
      pending.delete(index);
      yield { index, result: next.value };
    } else {
      arm(index);
      yield { index, delta: next.value };
    }
  }
}
