// POST /v1/chat/completions: the request as a Harmony turn, the turn as a chat.completion object
// or as chat.completion.chunk objects (the HTTP layer frames them as SSE).
import type { GenerationStream } from '../generate.js';
import { buildPrompt, chatMessages, effortOf, type ToolChoiceSpec } from './conversation.js';
import type { ChatCompletionRequest, ChatFinishReason, Usage } from './protocol.js';
import { checkModel, functionTools, refuseUnsupported, resolveMaxTokens, startTurn, type ServeContext } from './serving.js';
import { newId, readTurn, type TurnDelta, type TurnResult } from './turn.js';
import { ApiError, badParam } from './errors.js';

export interface ChatTurn {
  id: string;
  created: number;
  model: string;
  /** One a choice (`n`, 1 by default), on the engine side by side. */
  streams: GenerationStream[];
  stops: string[];
  includeUsage: boolean;
}

export async function startChat(ctx: ServeContext, body: ChatCompletionRequest, signal: AbortSignal): Promise<ChatTurn> {
  checkModel(ctx, body.model);
  refuseUnsupported({
    logprobs: body.logprobs, top_logprobs: body.top_logprobs, response_format: body.response_format,
    presence_penalty: body.presence_penalty, frequency_penalty: body.frequency_penalty, logit_bias: body.logit_bias,
  });
  const { instructions, messages } = chatMessages(body.messages);
  const tools = functionTools((body.tools ?? []).map((t) => t.function));
  const choice = body.tool_choice ?? 'auto';
  const spec: ToolChoiceSpec = typeof choice === 'string' ? choice : { name: choice.function.name };
  const harmony = await buildPrompt(instructions, tools, messages, effortOf(body.reasoning_effort), spec, 'tool_choice');
  const requested = body.max_completion_tokens ?? body.max_tokens;
  const param = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = resolveMaxTokens(ctx, harmony.prompt.length, requested, param, 'messages');
  const stops = body.stop === null || body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (stops.some((s) => s === '')) throw badParam('stop', "'stop' strings must not be empty");
  // `n` choices: n sequences of the same prompt. With a seed, choice i draws from seed + i (choice 0 is what n = 1
  // gives); without one, each takes its own random seed. A refusal of any (queue full, shutting down) cancels the
  // ones already started: nothing is half-admitted.
  const n = body.n ?? 1;
  const streams: GenerationStream[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const seed = body.seed === null || body.seed === undefined ? undefined : i === 0 ? body.seed : BigInt(body.seed) + BigInt(i);
      streams.push(startTurn(
        ctx,
        { harmony, maxTokens, temperature: body.temperature ?? 1, topP: body.top_p ?? 1, ...(seed !== undefined ? { seed } : {}), signal },
        'messages',
      ));
    }
  } catch (e) {
    for (const s of streams) s.abort();
    throw e;
  }
  return { id: newId('chatcmpl-'), created: Math.floor(Date.now() / 1000), model: ctx.modelName, streams, stops, includeUsage: body.stream_options?.include_usage === true };
}

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

function failure(r: TurnResult): ApiError | null {
  if (r.finishReason !== 'error') return null;
  return new ApiError(500, `generation failed: ${r.error?.message ?? 'unknown error'}`, 'server_error');
}

async function readToEnd(stream: GenerationStream, stops: string[]): Promise<TurnResult> {
  const reader = readTurn(stream, stops);
  let next = await reader.next();
  while (!next.done) next = await reader.next();
  return next.value;
}

export async function chatCompletion(turn: ChatTurn): Promise<Record<string, unknown>> {
  const rs = await Promise.all(turn.streams.map((s) => readToEnd(s, turn.stops)));
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
    return { index, message, logprobs: null, finish_reason: finishReason(r) };
  });
  return { id: turn.id, object: 'chat.completion', created: turn.created, model: turn.model, choices, usage: usage(rs) };
}

/**
 * chat.completion.chunk objects, each choice's as they come (`choices[0].index` says whose); a failure mid-stream
 * ends with an {error} object and cancels the other choices. The usage chunk, if asked for, comes after every
 * choice has finished.
 */
export async function* chatCompletionChunks(turn: ChatTurn): AsyncGenerator<Record<string, unknown>> {
  const chunk = (index: number, delta: Record<string, unknown>, finish: ChatFinishReason | null = null): Record<string, unknown> => ({
    id: turn.id,
    object: 'chat.completion.chunk',
    created: turn.created,
    model: turn.model,
    choices: [{ index, delta, logprobs: null, finish_reason: finish }],
  });
  for (let i = 0; i < turn.streams.length; i++) yield chunk(i, { role: 'assistant', content: '' });
  const readers = turn.streams.map((s) => readTurn(s, turn.stops));
  type Next = { i: number; next: IteratorResult<TurnDelta, TurnResult> };
  const pending = new Map<number, Promise<Next>>();
  const arm = (i: number): void => void pending.set(i, readers[i].next().then((next) => ({ i, next })));
  readers.forEach((_, i) => arm(i));
  const results: TurnResult[] = [];
  while (pending.size > 0) {
    const { i, next } = await Promise.race(pending.values());
    if (next.done) {
      pending.delete(i);
      const r = next.value;
      const err = failure(r);
      if (err) {
        for (const s of turn.streams) s.abort();
        yield err.body() as unknown as Record<string, unknown>;
        return;
      }
      results[i] = r;
      yield chunk(i, {}, finishReason(r));
      continue;
    }
    arm(i);
    const d = next.value;
    if (d.type === 'content') yield chunk(i, { content: d.text });
    else if (d.type === 'reasoning') yield chunk(i, { reasoning_content: d.text, reasoning: d.text });
    else if (d.type === 'tool-call-start')
      yield chunk(i, { tool_calls: [{ index: d.index, id: d.callId, type: 'function', function: { name: d.name, arguments: '' } }] });
    else yield chunk(i, { tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
  }
  if (turn.includeUsage) yield { id: turn.id, object: 'chat.completion.chunk', created: turn.created, model: turn.model, choices: [], usage: usage(results) };
}
