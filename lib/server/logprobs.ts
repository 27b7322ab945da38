// Token log-probabilities in the OpenAI APIs' shapes. The engine reports them per token (generate's
// options.logprobs: the log-softmax of the raw logits, before temperature and top_p, as vLLM reports
// them); the answer text reaches the client in deltas that need not follow token boundaries (a stop
// string holds text back), so each token is placed at the text offset where its text starts and goes
// out with the first delta that reaches that offset, once. Tokens whose text is cut by a stop string,
// and the stop token, are not reported.
import type { TokenLogprobs } from '../session.js';
import { tokenizer } from '../tokenizer.js';

/** A generated token of the answer text: its id, log-probabilities and where its text starts. */
export interface LoggedToken {
  id: number;
  logprobs: TokenLogprobs;
  /** Offset in the answer text (UTF-16 units) where this token's text starts. */
  start: number;
}

/** Tokens in text order; take() hands each out once, when the text sent reaches its start. */
export class TokenLog {
  readonly #tokens: LoggedToken[] = [];
  #taken = 0;

  add(id: number, logprobs: TokenLogprobs, start: number): void {
    this.#tokens.push({ id, logprobs, start });
  }

  /** The tokens not taken yet whose text starts before `upTo`. */
  take(upTo: number): LoggedToken[] {
    const from = this.#taken;
    while (this.#taken < this.#tokens.length && this.#tokens[this.#taken]!.start < upTo) this.#taken++;
    return this.#tokens.slice(from, this.#taken);
  }

  /** Every token whose text starts before `end` (the answer's length): the answer's tokens. */
  upTo(end: number): LoggedToken[] {
    return this.#tokens.filter((t) => t.start < end);
  }
}

/** JSON has no -Infinity: a log-probability of an impossible token as OpenAI (and vLLM) write it. */
const finite = (lp: number): number => (lp === -Infinity || Number.isNaN(lp) ? -9999 : lp);

const tokenText = (id: number): string => tokenizer.decode([id]);
const tokenBytes = (id: number): number[] => Array.from(tokenizer.tokenBytes(id));

/** Chat Completions' and the Responses API's entry: { token, logprob, bytes, top_logprobs }. */
export function chatLogprob(t: LoggedToken): Record<string, unknown> {
  return {
    token: tokenText(t.id),
    logprob: finite(t.logprobs.logprob),
    bytes: tokenBytes(t.id),
    top_logprobs: t.logprobs.top.map((a) => ({ token: tokenText(a.id), logprob: finite(a.logprob), bytes: tokenBytes(a.id) })),
  };
}

/**
 * The legacy completions API's object for a run of tokens: parallel arrays, top_logprobs as { token text: logprob }
 * per token, text_offset from the start of the choice's text (echo, which would shift it, is refused with logprobs).
 */
export function completionLogprobs(tokens: LoggedToken[]): Record<string, unknown> {
  return {
    tokens: tokens.map((t) => tokenText(t.id)),
    token_logprobs: tokens.map((t) => finite(t.logprobs.logprob)),
    top_logprobs: tokens.map((t) => Object.fromEntries(t.logprobs.top.map((a) => [tokenText(a.id), finite(a.logprob)]))),
    text_offset: tokens.map((t) => t.start),
  };
}
