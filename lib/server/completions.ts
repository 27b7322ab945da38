// POST /v1/completions: the legacy text-completion API, as vLLM serves it for gpt-oss. The prompt is raw: text is
// encoded with o200k_harmony, special-token text (`<|start|>`, ...) as the special tokens (as Hugging Face tokenizers
// and so vLLM encode it), so a client can write a Harmony prompt itself; token-id arrays go in as they are. The output
// is raw text (no Harmony parsing), ending at <|return|>, <|call|>, <|end|> or <|endoftext|> (generate()'s raw stops).
// Several prompts and `n` give prompts x n choices, choice index = prompt index x n + j (OpenAI's order).
import type { GenerationStream } from '../generate.js';
import { tokenizer } from '../tokenizer.js';
import { badParam } from './errors.js';
import type { CompletionRequest } from './protocol.js';
import { completionLogprobs } from './logprobs.js';
import { checkLogitBias, checkModel, choiceSeed, failure, refuseUnsupported, resolveMaxTokens, startTurns, stopStrings, type ServeContext, type TurnRequest } from './serving.js';
import { drain, interleave, newId, readText, type TextResult } from './turn.js';

export interface CompletionTurn {
  id: string;
  created: number;
  model: string;
  /** One a choice, prompt-major. */
  streams: GenerationStream[];
  /** Each choice's prompt as text (echo). */
  echoes: string[];
  stops: string[];
  includeUsage: boolean;
  /** Choices a prompt. */
  n: number;
  /** `logprobs` (0-5): each token's log-probability and this many alternatives; null: none. */
  logprobs: number | null;
}

/** Most choices (prompts x n) one request may start. */
export const MAX_COMPLETION_CHOICES = 64;

export async function startCompletion(ctx: ServeContext, body: CompletionRequest, signal: AbortSignal): Promise<CompletionTurn> {
  checkModel(ctx, body.model);
  refuseUnsupported({ suffix: body.suffix === '' ? null : body.suffix });
  checkLogitBias(ctx, body.logit_bias);
  const logprobs = body.logprobs ?? null;
  if (logprobs !== null && body.echo)
    throw badParam('echo', 'echo with logprobs is not supported: the prompt tokens\' log-probabilities are not computed (drop echo, or logprobs)', 'unsupported_parameter');
  const n = body.n ?? 1;
  if (body.best_of !== null && body.best_of !== undefined && body.best_of !== n)
    throw badParam('best_of', `best_of is not supported: it must equal n (${n}); this server returns every choice it generates`, 'unsupported_parameter');
  // string | string[] | number[] | number[][] -> one prompt a list item
  const p = body.prompt;
  const prompts: (string | number[])[] = typeof p === 'string' ? [p] : p.length > 0 && typeof p[0] === 'number' ? [p as number[]] : (p as (string | number[])[]);
  if (prompts.length * n > MAX_COMPLETION_CHOICES)
    throw badParam('n', `${prompts.length} prompt(s) x n = ${n} is ${prompts.length * n} choices: at most ${MAX_COMPLETION_CHOICES} a request`);
  const vocab = tokenizer.vocabSize;
  const ids = await Promise.all(
    prompts.map(async (q, i) => {
      const at = typeof p === 'string' || typeof p[0] === 'number' ? 'prompt' : `prompt[${i}]`;
      if (typeof q === 'string') {
        if (q === '') throw badParam(at, `${at} is empty: give at least one token of prompt`);
        return tokenizer.encodeAsync(q, { allowSpecial: 'all' });
      }
      if (q.length === 0) throw badParam(at, `${at} is empty: give at least one token of prompt`);
      const bad = q.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
      if (bad >= 0) throw badParam(at, `${at}[${bad}] = ${q[bad]} is not a token id of this model (0 to ${vocab - 1})`);
      return q;
    }),
  );
  const stops = stopStrings(body.stop);
  // every choice's request first (a prompt too long for the context is a 400 before anything starts), prompt-major:
  // choice c = prompt i's j-th draws from seed + c (choiceSeed)
  const requests: TurnRequest[] = [];
  const echoes: string[] = [];
  ids.forEach((prompt, i) => {
    // OpenAI's default for this API is 16 tokens
    const maxTokens = resolveMaxTokens(ctx, prompt.length, body.max_tokens ?? 16, 'max_tokens', typeof p === 'string' ? 'prompt' : `prompt[${i}]`);
    const text = typeof prompts[i] === 'string' ? (prompts[i] as string) : tokenizer.decode(prompt);
    for (let j = 0; j < n; j++) {
      const seed = choiceSeed(body.seed, i * n + j);
      requests.push({
        harmony: { prompt }, parse: false, maxTokens, temperature: body.temperature ?? 1, topP: body.top_p ?? 1,
        ...(seed !== undefined ? { seed } : {}), ...(logprobs !== null ? { logprobs } : {}), signal,
        logitBias: body.logit_bias, presencePenalty: body.presence_penalty, frequencyPenalty: body.frequency_penalty,
      });
      echoes.push(body.echo ? text : '');
    }
  });
  const streams = startTurns(ctx, requests, 'prompt');
  return { id: newId('cmpl-'), created: Math.floor(Date.now() / 1000), model: ctx.modelName, streams, echoes, stops, includeUsage: body.stream_options?.include_usage === true, n, logprobs };
}

const finishReason = (r: TextResult): 'stop' | 'length' => (r.finishReason === 'length' || r.finishReason === 'context' ? 'length' : 'stop');

/** Usage over the choices: each prompt once (its n choices share it), the completions summed. */
function usage(turn: CompletionTurn, rs: TextResult[]): Record<string, number> {
  let prompt = 0;
  let completionTokens = 0;
  rs.forEach((r, c) => {
    if (c % turn.n === 0) prompt += r.promptTokens;
    completionTokens += r.completionTokens;
  });
  return { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens };
}

export async function completion(turn: CompletionTurn): Promise<Record<string, unknown>> {
  const rs = await Promise.all(turn.streams.map((s) => drain(readText(s, turn.stops))));
  for (const r of rs) {
    const err = failure(r);
    if (err) throw err;
  }
  return {
    id: turn.id,
    object: 'text_completion',
    created: turn.created,
    model: turn.model,
    choices: rs.map((r, index) => ({
      index,
      text: turn.echoes[index] + r.text,
      logprobs: turn.logprobs !== null ? completionLogprobs(r.tokens ?? []) : null,
      finish_reason: finishReason(r),
    })),
    usage: usage(turn, rs),
  };
}

/**
 * text_completion chunks, each choice's as they come (`choices[0].index` says whose): its echo first, the text, then
 * a chunk with its finish_reason; a failure ends with an {error} object and cancels the other choices. The usage
 * chunk, if asked for, comes after every choice has finished.
 */
export async function* completionChunks(turn: CompletionTurn): AsyncGenerator<Record<string, unknown>> {
  const chunk = (index: number, text: string, finish: 'stop' | 'length' | null = null, logprobs: Record<string, unknown> | null = null): Record<string, unknown> => ({
    id: turn.id,
    object: 'text_completion',
    created: turn.created,
    model: turn.model,
    choices: [{ index, text, logprobs, finish_reason: finish }],
  });
  for (let c = 0; c < turn.streams.length; c++) if (turn.echoes[c] !== '') yield chunk(c, turn.echoes[c]);
  const results: TextResult[] = [];
  for await (const e of interleave(turn.streams.map((s) => readText(s, turn.stops)))) {
    if ('result' in e) {
      const err = failure(e.result);
      if (err) {
        for (const s of turn.streams) s.abort();
        yield err.body() as unknown as Record<string, unknown>;
        return;
      }
      results[e.index] = e.result;
      yield chunk(e.index, '', finishReason(e.result));
    } else if (e.delta.text !== '') {
      yield chunk(e.index, e.delta.text, null, turn.logprobs !== null ? completionLogprobs(e.delta.tokens ?? []) : null);
    }
  }
  if (turn.includeUsage) yield { id: turn.id, object: 'text_completion', created: turn.created, model: turn.model, choices: [], usage: usage(turn, results) };
}
