// POST /v1/chat/completions: the request as a Harmony turn, the turn as a chat.completion object
// or as chat.completion.chunk objects (the HTTP layer frames them as SSE).
import type { GenerationStream } from '../generate.js';
import { buildPrompt, chatMessages, effortOf, type ToolChoiceSpec } from './conversation.js';
import type { ChatCompletionRequest, ChatFinishReason, Usage } from './protocol.js';
import { badParam } from './errors.js';
import { chatLogprob, type LoggedToken } from './logprobs.js';
import { checkLogitBias, checkModel, choiceSeed, failure, functionTools, resolveMaxTokens, responseFormat, startTurns, stopStrings, strictTools, type ServeContext } from './serving.js';
import { drain, interleave, newId, readTurn, type TurnResult } from './turn.js';

export interface ChatTurn {
  id: string;
  created: number;
  model: string;
  /** One a choice (`n`, 1 by default), on the engine side by side. */
  streams: GenerationStream[];
  stops: string[];
  includeUsage: boolean;
  /** `logprobs: true`: each choice's answer tokens with their log-probabilities. */
  logprobs: boolean;
}

export async function startChat(ctx: ServeContext, body: ChatCompletionRequest, signal: AbortSignal): Promise<ChatTurn> {
  checkModel(ctx, body.model);
  checkLogitBias(ctx, body.logit_bias);
  const format = responseFormat(body.response_format, 'response_format', (f) => f.json_schema?.schema, 'response_format.json_schema.schema');
  const logprobs = body.logprobs === true;
  if (!logprobs && (body.top_logprobs ?? 0) > 0)
    throw badParam('top_logprobs', 'top_logprobs needs logprobs: true (the alternatives are reported beside each token\'s log-probability)');
  const { instructions, messages } = chatMessages(body.messages);
  const tools = functionTools((body.tools ?? []).map((t) => t.function));
  const strict = strictTools((body.tools ?? []).map((t) => t.function), (i) => `tools[${i}].function.parameters`);
  const choice = body.tool_choice ?? 'auto';
  const spec: ToolChoiceSpec = typeof choice === 'string' ? choice : { name: choice.function.name };
  const harmony = await buildPrompt(instructions, tools, messages, effortOf(body.reasoning_effort), spec, 'tool_choice');
  const requested = body.max_completion_tokens ?? body.max_tokens;
  const param = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = resolveMaxTokens(ctx, harmony.prompt.length, requested, param, 'messages');
  const stops = stopStrings(body.stop);
  // `n` choices: n sequences of the same prompt, choice i drawing from seed + i (choiceSeed)
  const turn = {
    harmony, maxTokens, temperature: body.temperature ?? 1, topP: body.top_p ?? 1, signal, ...(logprobs ? { logprobs: body.top_logprobs ?? 0 } : {}),
    logitBias: body.logit_bias, presencePenalty: body.presence_penalty, frequencyPenalty: body.frequency_penalty,
    ...(format ? { format } : {}),
    ...(strict ? { strictTools: strict } : {}),
  };
  const streams = startTurns(
    ctx,
    Array.from({ length: body.n ?? 1 }, (_, i) => {
      const seed = choiceSeed(body.seed, i);
      return { ...turn, ...(seed !== undefined ? { seed } : {}) };
    }),
    'messages',
  );
  return { id: newId('chatcmpl-'), created: Math.floor(Date.now() / 1000), model: ctx.modelName, streams, stops, includeUsage: body.stream_options?.include_usage === true, logprobs };
}

/** A choice's `logprobs`: the answer's tokens (content; not the reasoning, tool calls or Harmony's own tokens). */
const choiceLogprobs = (tokens: LoggedToken[]): Record<string, unknown> => ({ content: tokens.map(chatLogprob), refusal: null });

function finishReason(r: TurnResult): ChatFinishReason {
  // OpenAI has no finish reason for a full context: 'length', as vLLM reports it
  if (r.finishReason === 'tool_calls') return 'tool_calls';
  if (r.finishReason === 'length' || r.finishReason === 'context') return 'length';
  return 'stop';
}

/** The request's usage over its choices: the prompt once (as OpenAI counts it), the completions summed. */
function usage(rs: TurnResult[]): Usage {
  const completion = rs.reduce((a, r) => a + r.completionTokens, 0);
  return {
    prompt_tokens: rs[0].promptTokens,
    completion_tokens: completion,
    total_tokens: rs[0].promptTokens + completion,
    prompt_tokens_details: { cached_tokens: rs[0].raw.usage.cachedPromptTokens },
    completion_tokens_details: { reasoning_tokens: rs.reduce((a, r) => a + r.reasoningTokens, 0) },
  };
}

export async function chatCompletion(turn: ChatTurn): Promise<Record<string, unknown>> {
  const rs = await Promise.all(turn.streams.map((s) => drain(readTurn(s, turn.stops))));
  for (const r of rs) {
    const err = failure(r);
    if (err) throw err;  // the other choices have ended: Promise.all waited for every one
  }
  const choices = rs.map((r, index) => {
    const message: Record<string, unknown> = {
      role: 'assistant',
      content: r.content === '' && r.toolCalls.length > 0 ? null : r.content,
      reasoning_content: r.reasoning === '' ? null : r.reasoning,
      reasoning: r.reasoning === '' ? null : r.reasoning,
      refusal: null,
    };
    if (r.toolCalls.length > 0)
      message.tool_calls = r.toolCalls.map((c) => ({ id: c.callId, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    return { index, message, logprobs: turn.logprobs ? choiceLogprobs(r.contentTokens ?? []) : null, finish_reason: finishReason(r) };
  });
  return { id: turn.id, object: 'chat.completion', created: turn.created, model: turn.model, choices, usage: usage(rs) };
}

/**
 * chat.completion.chunk objects, each choice's as they come (`choices[0].index` says whose); a failure mid-stream
 * ends with an {error} object and cancels the other choices. The usage chunk, if asked for, comes after every
 * choice has finished.
 */
export async function* chatCompletionChunks(turn: ChatTurn): AsyncGenerator<Record<string, unknown>> {
  const chunk = (index: number, delta: Record<string, unknown>, finish: ChatFinishReason | null = null, tokens?: LoggedToken[]): Record<string, unknown> => ({
    id: turn.id,
    object: 'chat.completion.chunk',
    created: turn.created,
    model: turn.model,
    choices: [{ index, delta, logprobs: turn.logprobs && tokens ? choiceLogprobs(tokens) : null, finish_reason: finish }],
  });
  for (let i = 0; i < turn.streams.length; i++) yield chunk(i, { role: 'assistant', content: '' });
  const results: TurnResult[] = [];
  for await (const e of interleave(turn.streams.map((s) => readTurn(s, turn.stops)))) {
    const i = e.index;
    if ('result' in e) {
      const err = failure(e.result);
      if (err) {
        for (const s of turn.streams) s.abort();
        yield err.body() as unknown as Record<string, unknown>;
        return;
      }
      results[i] = e.result;
      yield chunk(i, {}, finishReason(e.result));
      continue;
    }
    const d = e.delta;
    if (d.type === 'content') yield chunk(i, { content: d.text }, null, d.tokens ?? []);
    else if (d.type === 'reasoning') yield chunk(i, { reasoning_content: d.text, reasoning: d.text });
    else if (d.type === 'tool-call-start')
      yield chunk(i, { tool_calls: [{ index: d.index, id: d.callId, type: 'function', function: { name: d.name, arguments: '' } }] });
    else yield chunk(i, { tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
  }
  if (turn.includeUsage) yield { id: turn.id, object: 'chat.completion.chunk', created: turn.created, model: turn.model, choices: [], usage: usage(results) };
}
