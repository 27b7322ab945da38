// POST /v1/chat/completions: the request as a Harmony turn, the turn as a chat.completion object
// or as chat.completion.chunk objects (the HTTP layer frames them as SSE).
import type { GenerationStream } from '../generate.js';
import { buildPrompt, chatMessages, effortOf, type ToolChoiceSpec } from './conversation.js';
import type { ChatCompletionRequest, ChatFinishReason, Usage } from './protocol.js';
import { checkModel, functionTools, refuseUnsupported, resolveMaxTokens, startTurn, type ServeContext } from './serving.js';
import { newId, readTurn, type TurnResult } from './turn.js';
import { ApiError, badParam } from './errors.js';

export interface ChatTurn {
  id: string;
  created: number;
  model: string;
  stream: GenerationStream;
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
  const stream = startTurn(
    ctx,
    { harmony, maxTokens, temperature: body.temperature ?? 1, topP: body.top_p ?? 1, ...(body.seed !== null && body.seed !== undefined ? { seed: body.seed } : {}), signal },
    'messages',
  );
  return { id: newId('chatcmpl-'), created: Math.floor(Date.now() / 1000), model: ctx.modelName, stream, stops, includeUsage: body.stream_options?.include_usage === true };
}

function finishReason(r: TurnResult): ChatFinishReason {
  // OpenAI has no finish reason for a full context: 'length', as vLLM reports it
  if (r.finishReason === 'tool_calls') return 'tool_calls';
  if (r.finishReason === 'length' || r.finishReason === 'context') return 'length';
  return 'stop';
}

function usage(r: TurnResult): Usage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    prompt_tokens_details: { cached_tokens: r.raw.usage.cachedPromptTokens },
    completion_tokens_details: { reasoning_tokens: r.reasoningTokens },
  };
}

function failure(r: TurnResult): ApiError | null {
  if (r.finishReason !== 'error') return null;
  return new ApiError(500, `generation failed: ${r.error?.message ?? 'unknown error'}`, 'server_error');
}

export async function chatCompletion(turn: ChatTurn): Promise<Record<string, unknown>> {
  const reader = readTurn(turn.stream, turn.stops);
  let next = await reader.next();
  while (!next.done) next = await reader.next();
  const r = next.value;
  const err = failure(r);
  if (err) throw err;
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: r.content === '' && r.toolCalls.length > 0 ? null : r.content,
    reasoning_content: r.reasoning === '' ? null : r.reasoning,
    reasoning: r.reasoning === '' ? null : r.reasoning,
    refusal: null,
  };
  if (r.toolCalls.length > 0)
    message.tool_calls = r.toolCalls.map((c) => ({ id: c.callId, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  return {
    id: turn.id,
    object: 'chat.completion',
    created: turn.created,
    model: turn.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(r) }],
    usage: usage(r),
  };
}

/** chat.completion.chunk objects; a failure mid-stream ends with an {error} object. */
export async function* chatCompletionChunks(turn: ChatTurn): AsyncGenerator<Record<string, unknown>> {
  const chunk = (delta: Record<string, unknown>, finish: ChatFinishReason | null = null): Record<string, unknown> => ({
    id: turn.id,
    object: 'chat.completion.chunk',
    created: turn.created,
    model: turn.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  yield chunk({ role: 'assistant', content: '' });
  const reader = readTurn(turn.stream, turn.stops);
  for (;;) {
    const next = await reader.next();
    if (next.done) {
      const r = next.value;
      const err = failure(r);
      if (err) {
        yield err.body() as unknown as Record<string, unknown>;
        return;
      }
      yield chunk({}, finishReason(r));
      if (turn.includeUsage) yield { id: turn.id, object: 'chat.completion.chunk', created: turn.created, model: turn.model, choices: [], usage: usage(r) };
      return;
    }
    const d = next.value;
    if (d.type === 'content') yield chunk({ content: d.text });
    else if (d.type === 'reasoning') yield chunk({ reasoning_content: d.text, reasoning: d.text });
    else if (d.type === 'tool-call-start')
      yield chunk({ tool_calls: [{ index: d.index, id: d.callId, type: 'function', function: { name: d.name, arguments: '' } }] });
    else yield chunk({ tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
  }
}
