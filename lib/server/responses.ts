// POST /v1/responses: the Responses API over one Harmony turn. Output items: a `reasoning` item
// (the analysis channel, as reasoning_text content), a `message` item (the final channel, as
// output_text) and a `function_call` item per call. Streaming emits the typed events in OpenAI's
// order: response.created, response.in_progress, then per item output_item.added, content_part.added,
// the deltas, their .done events, content_part.done, output_item.done, and response.completed
// (response.incomplete when max_output_tokens or the context ran out, response.failed on an error).
// Stored (`store`, default true) in the server's ResponseStore once it ends: `previous_response_id` continues from a
// stored response (its inputs and outputs, then the new input; its `instructions` are not carried over, as OpenAI's
// are not), and GET / DELETE /v1/responses/{id} read and drop one.
import type { GenerationStream } from '../generate.js';
import { buildPrompt, effortOf, responseItems, type ToolChoiceSpec } from './conversation.js';
import { badParam } from './errors.js';
import type { ContentPart, ResponseInputItem, ResponsesRequest } from './protocol.js';
import { chatLogprob, type LoggedToken } from './logprobs.js';
import type { ResponseStore } from './response-store.js';
import { checkModel, functionTools, resolveMaxTokens, responseFormat, type ServeContext, startTurn, strictTools } from './serving.js';
import { newId, readTurn, type TurnResult } from './turn.js';

export interface ResponsesTurn {
  id: string;
  createdAt: number;
  stream: GenerationStream;
  body: ResponsesRequest;
  model: string;
  maxTokens: number;
  /** The conversation as input items: the previous response's, then this request's input. */
  history: ResponseInputItem[];
  /** Where the response goes when it ends (null: `store: false`). */
  store: ResponseStore | null;
  /** The answer's token log-probabilities are reported (include 'message.output_text.logprobs', or top_logprobs). */
  logprobs: boolean;
}

export async function startResponse(ctx: ServeContext, body: ResponsesRequest, signal: AbortSignal): Promise<ResponsesTurn> {
  checkModel(ctx, body.model);
  const format = responseFormat(body.text?.format, 'text.format', (f) => f.schema, 'text.format.schema');
  // the answer's log-probabilities: asked for by include (as OpenAI), or by top_logprobs alone (never ignored)
  const topLogprobs = body.top_logprobs ?? null;
  const logprobs = (body.include ?? []).includes('message.output_text.logprobs') || topLogprobs !== null;
  let history: ResponseInputItem[] = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
  if (body.previous_response_id !== null && body.previous_response_id !== undefined) {
    const previous = ctx.responses.get(body.previous_response_id);
    if (!previous)
      throw badParam('previous_response_id', `Previous response with id '${body.previous_response_id}' not found (this server keeps the last ${ctx.responses.capacity} stored responses, in memory)`, 'previous_response_not_found');
    history = [...previous.items, ...history];
  }
  const fnTools = (body.tools ?? []).map((t, i) => {
    if (t.type !== 'function') throw badParam(`tools[${i}].type`, `tools[${i}]: tool type '${t.type}' is not supported (function tools only)`, 'unsupported_value');
    if (typeof t.name !== 'string') throw badParam(`tools[${i}].name`, `tools[${i}]: a function tool needs a name`, 'missing_required_parameter');
    return t;
  });
  const tools = functionTools(fnTools);
  const strict = strictTools(fnTools, (i) => `tools[${i}].parameters`);
  const choice = body.tool_choice ?? 'auto';
  const spec: ToolChoiceSpec = typeof choice === 'string' ? choice : { name: choice.name };
  const render = (items: ResponseInputItem[]) => {
    const { instructions, messages } = responseItems(items);
    if (body.instructions) instructions.unshift(body.instructions);
    return buildPrompt(instructions, tools, messages, effortOf(body.reasoning?.effort), spec, 'tool_choice');
  };
  let harmony = await render(history);
  if (body.truncation === 'auto') {
    // OpenAI's 'auto': drop the oldest turns (a user message and what answered it; system and developer messages stay)
    // until the prompt leaves max_output_tokens, or a quarter of the context, free; the last turn always stays
    const limit = ctx.engine.maxContext;
    const reserve = Math.min(body.max_output_tokens ?? Math.floor(limit / 4), limit - 1);
    for (let shorter = dropOldestTurn(history); harmony.prompt.length + reserve > limit && shorter !== null; shorter = dropOldestTurn(history)) {
      history = shorter;
      harmony = await render(history);
    }
  }
  const maxTokens = resolveMaxTokens(ctx, harmony.prompt.length, body.max_output_tokens, 'max_output_tokens', 'input');
  const stream = startTurn(
    ctx,
    {
      harmony, maxTokens, temperature: body.temperature ?? 1, topP: body.top_p ?? 1,
      ...(body.seed !== null && body.seed !== undefined ? { seed: body.seed } : {}), ...(logprobs ? { logprobs: topLogprobs ?? 0 } : {}), signal,
      ...(format ? { format } : {}),
      ...(strict ? { strictTools: strict } : {}),
    },
    'input',
  );
  const store = body.store === false ? null : ctx.responses;
  return { id: newId('resp_'), createdAt: Math.floor(Date.now() / 1000), stream, body, model: ctx.modelName, maxTokens, history, store, logprobs };
}

const isUser = (item: ResponseInputItem): boolean => (item.type ?? 'message') === 'message' && (item as { role?: string }).role === 'user';
const isInstruction = (item: ResponseInputItem): boolean =>
  (item.type ?? 'message') === 'message' && ['system', 'developer'].includes((item as { role?: string }).role ?? '');

/**
 * The items without their oldest turn: everything before the second user message goes but system and developer
 * messages (a function call and its output are in one turn, so no output loses its call). null when one turn is left.
 */
function dropOldestTurn(items: ResponseInputItem[]): ResponseInputItem[] | null {
  const first = items.findIndex(isUser);
  const second = first < 0 ? -1 : items.findIndex((item, i) => i > first && isUser(item));
  if (second < 0) return null;
  return [...items.slice(0, second).filter(isInstruction), ...items.slice(second)];
}

/** An output item as the input item that continues from it (what a client sends back in `input`). */
function asInput(item: Item): ResponseInputItem {
  if (item.type === 'reasoning') return { type: 'reasoning', content: item.content as { type: string; text: string }[] };
  if (item.type === 'function_call') return { type: 'function_call', call_id: item.call_id as string, name: item.name as string, arguments: item.arguments as string };
  return { type: 'message', role: 'assistant', content: item.content as ContentPart[] };
}

type Item = Record<string, unknown> & { type: string; id: string };

function responseObject(t: ResponsesTurn, status: string, output: Item[], r: TurnResult | null): Record<string, unknown> {
  const b = t.body;
  return {
    id: t.id,
    object: 'response',
    created_at: t.createdAt,
    status,
    model: t.model,
    output,
    output_text: output
      .filter((i) => i.type === 'message')
      .map((i) => ((i.content as { text: string }[])[0]?.text ?? ''))
      .join(''),
    error: r?.finishReason === 'error' ? { code: 'server_error', message: r.error?.message ?? 'generation failed' } : null,
    incomplete_details: r && (r.finishReason === 'length' || r.finishReason === 'context') ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    metadata: b.metadata ?? {},
    parallel_tool_calls: false,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: { effort: b.reasoning?.effort ?? 'medium', summary: null },
    temperature: b.temperature ?? 1,
    top_p: b.top_p ?? 1,
    text: { format: b.text?.format ?? { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    truncation: b.truncation ?? 'disabled',
    store: t.store !== null,
    usage: r
      ? {
          input_tokens: r.promptTokens,
          input_tokens_details: { cached_tokens: r.raw.usage.cachedPromptTokens },
          output_tokens: r.completionTokens,
          output_tokens_details: { reasoning_tokens: r.reasoningTokens },
          total_tokens: r.promptTokens + r.completionTokens,
        }
      : null,
  };
}

function finalStatus(r: TurnResult): 'completed' | 'incomplete' | 'failed' {
  if (r.finishReason === 'error') return 'failed';
  if (r.finishReason === 'length' || r.finishReason === 'context') return 'incomplete';
  return 'completed';
}

/** The typed stream events; the last one is response.completed / .incomplete / .failed. */
export async function* responseEvents(t: ResponsesTurn): AsyncGenerator<Record<string, unknown>> {
  let seq = 0;
  const ev = (type: string, fields: Record<string, unknown>): Record<string, unknown> => ({ type, sequence_number: seq++, ...fields });
  const output: Item[] = [];
  // tokens: a message's answer tokens with their log-probabilities (when asked for)
  type OpenItem = { item: Item; kind: 'reasoning' | 'message' | 'function_call'; text: string; tokens: LoggedToken[] };
  const logprobsOf = (tokens: LoggedToken[] | undefined): Record<string, unknown>[] => (t.logprobs ? (tokens ?? []).map(chatLogprob) : []);
  let open = null as OpenItem | null;
  const current = (): OpenItem | null => open;
  const itemDone = (o: OpenItem, itemStatus: string): Record<string, unknown>[] => {
    const index = output.indexOf(o.item);
    const out: Record<string, unknown>[] = [];
    if (o.kind === 'reasoning') {
      o.item.content = [{ type: 'reasoning_text', text: o.text }];
      out.push(ev('response.reasoning_text.done', { item_id: o.item.id, output_index: index, content_index: 0, text: o.text }));
      out.push(ev('response.content_part.done', { item_id: o.item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: o.text } }));
    } else if (o.kind === 'message') {
      const logprobs = logprobsOf(o.tokens);
      const part = { type: 'output_text', text: o.text, annotations: [], logprobs };
      o.item.content = [part];
      out.push(ev('response.output_text.done', { item_id: o.item.id, output_index: index, content_index: 0, text: o.text, logprobs }));
      out.push(ev('response.content_part.done', { item_id: o.item.id, output_index: index, content_index: 0, part }));
    } else {
      o.item.arguments = o.text;
      out.push(ev('response.function_call_arguments.done', { item_id: o.item.id, output_index: index, name: o.item.name, arguments: o.text }));
    }
    o.item.status = itemStatus;
    out.push(ev('response.output_item.done', { output_index: index, item: o.item }));
    return out;
  };
  const openItem = (kind: 'reasoning' | 'message' | 'function_call', extra: Record<string, unknown> = {}): Record<string, unknown>[] => {
    const out = open ? itemDone(open, 'completed') : [];
    const item: Item =
      kind === 'reasoning'
        ? { type: 'reasoning', id: newId('rs_'), summary: [], content: [], status: 'in_progress' }
        : kind === 'message'
          ? { type: 'message', id: newId('msg_'), role: 'assistant', status: 'in_progress', content: [] }
          : { type: 'function_call', id: newId('fc_'), status: 'in_progress', arguments: '', ...extra };
    output.push(item);
    open = { item, kind, text: '', tokens: [] };
    const index = output.length - 1;
    out.push(ev('response.output_item.added', { output_index: index, item: { ...item } }));
    if (kind === 'reasoning') out.push(ev('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } }));
    if (kind === 'message')
      out.push(ev('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
    return out;
  };

  yield ev('response.created', { response: responseObject(t, 'in_progress', [], null) });
  yield ev('response.in_progress', { response: responseObject(t, 'in_progress', [], null) });
  const reader = readTurn(t.stream);
  for (;;) {
    const next = await reader.next();
    if (next.done) {
      const r = next.value;
      const status = finalStatus(r);
      const o = current();
      if (o) yield* itemDone(o, status === 'completed' ? 'completed' : 'incomplete');
      const type = status === 'completed' ? 'response.completed' : status === 'incomplete' ? 'response.incomplete' : 'response.failed';
      const response = responseObject(t, status, output, r);
      t.store?.put(t.id, { response, items: [...t.history, ...output.map(asInput)] });  // before the client can name it
      yield ev(type, { response });
      return;
    }
    const d = next.value;
    if (d.type === 'reasoning' || d.type === 'content') {
      const kind = d.type === 'reasoning' ? 'reasoning' : 'message';
      if (current()?.kind !== kind) yield* openItem(kind);
      const o = current()!;
      o.text += d.text;
      if (d.type === 'content' && d.tokens) o.tokens.push(...d.tokens);
      const index = output.indexOf(o.item);
      yield kind === 'reasoning'
        ? ev('response.reasoning_text.delta', { item_id: o.item.id, output_index: index, content_index: 0, delta: d.text })
        : ev('response.output_text.delta', { item_id: o.item.id, output_index: index, content_index: 0, delta: d.text, logprobs: logprobsOf(d.type === 'content' ? d.tokens : undefined) });
    } else if (d.type === 'tool-call-start') {
      yield* openItem('function_call', { call_id: d.callId, name: d.name });
    } else {
      const o = current();
      if (o?.kind !== 'function_call') continue;
      o.text += d.text;
      yield ev('response.function_call_arguments.delta', { item_id: o.item.id, output_index: output.indexOf(o.item), delta: d.text });
    }
  }
}

/** The whole response object (non-streaming): the last event's response. */
export async function responseJson(t: ResponsesTurn): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> | undefined;
  for await (const e of responseEvents(t)) last = e;
  return last!.response as Record<string, unknown>;
}
