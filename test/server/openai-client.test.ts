// The OpenAI-compatible server, driven by the official `openai` client (unchanged) over 127.0.0.1:
// a random full-vocabulary model for real generation and usage counts, and a scripted backend where
// the Harmony plumbing needs known output (tool calls).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { createSyntheticModel, generate, type GptOssModel } from '../../lib/index.js';
import { renderConversation, renderMessageTokens } from '../../lib/harmony/index.js';
import { tokenizer, SPECIAL_TOKENS as S } from '../../lib/tokenizer.js';
import { createServer, type OpenAIServer } from '../../lib/server/app.js';
import { FULL_VOCAB_TINY } from '../helpers/checkpoint.js';
import { assistantReply, ScriptedBackend, scriptedLogprobs } from '../helpers/scripted-backend.js';

const WEATHER = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

const reply = assistantReply;
const THINK = reply({ role: 'assistant', channel: 'analysis', content: 'The user wants weather.' }, S.end);
const CALL = reply({ role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}' }, S.call);
const ANSWER = reply({ role: 'assistant', channel: 'final', content: 'It is 20 C in Paris.' }, S.return);
const ASSISTANT = [S.start, ...tokenizer.encode('assistant')];
const JSON_ANSWER = reply({ role: 'assistant', channel: 'final', content: '{"city": "Paris", "temperatureC": 20}' }, S.return);

async function sse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split('\n\n').filter((f) => f.trim() !== '');
}

type ApiError = InstanceType<typeof OpenAI.APIError>;
/** The API error a client call must end in (anything else, a success included, fails the test). */
async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('OpenAI server (openai client, 127.0.0.1)', () => {
  let model: GptOssModel;
  let server: OpenAIServer;
  let client: OpenAI;
  let url: string;
  let scripted: OpenAIServer;
  let scriptedClient: OpenAI;
  let backend: ScriptedBackend;

  beforeAll(async () => {
    model = await createSyntheticModel(FULL_VOCAB_TINY, { device: 'cpu' });
    server = createServer(model.createEngine({ maxSequences: 4, maxBatchTokens: 64, maxContext: 1024, maxQueue: 512 }), { modelName: 'tiny', bodyLimit: 64 * 1024 });
    url = (await server.listen(0)).url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // the scripted "model": a tool call, unless the prompt already holds the tool's answer
    backend = new ScriptedBackend(256, (history) => {
      const text = tokenizer.decode(history);
      if (text.includes('Reply in JSON')) return [...THINK, ...ASSISTANT, ...JSON_ANSWER];
      return text.includes('<|start|>functions.get_weather') ? ANSWER : [...THINK, ...ASSISTANT, ...CALL];
    });
    scripted = createServer(model.createEngine({ backend, maxSequences: 2, maxBatchTokens: 64 }), { modelName: 'scripted' });
    scriptedClient = new OpenAI({ baseURL: `${(await scripted.listen(0)).url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.close(1000);
    await scripted?.close(1000);
    await model?.dispose();
  });

  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'Answer briefly.' },
    { role: 'user', content: 'What is the capital of France?' },
  ];
  // what the server renders for `messages` (system text -> developer instructions)
  const rendered = (effort?: 'low' | 'medium' | 'high'): number[] =>
    renderConversation({ system: effort ? { reasoningEffort: effort } : {}, developer: { instructions: 'Answer briefly.' }, messages: [{ role: 'user', content: 'What is the capital of France?' }] });

  it('GET /v1/models and /health', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    const health = await (await fetch(`${url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', model: 'tiny', running: 0, waiting: 0 });
    expect(health.freeBlocks).toBe(health.totalBlocks);
  });

  it('non-streaming chat: the same tokens as generate(), usage equal to the real counts', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0.7, seed: 42, reasoning_effort: 'low' });
    const prompt = rendered('low');
    const ref = await generate(model, prompt, { maxTokens: 12, temperature: 0.7, seed: 42, parse: true }).result;
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('tiny');
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.usage).toMatchObject({ prompt_tokens: prompt.length, completion_tokens: ref.tokens.length, total_tokens: prompt.length + ref.tokens.length });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe(ref.finishReason === 'length' ? 'length' : 'stop');
    expect(choice.message.content ?? '').toBe(ref.channels.final);
    const reasoning = (choice.message as unknown as { reasoning_content: string | null; reasoning: string | null });
    expect(reasoning.reasoning_content ?? '').toBe(ref.channels.analysis);
    expect(reasoning.reasoning).toBe(reasoning.reasoning_content);
    // max_completion_tokens is the same limit
    const r2 = await client.chat.completions.create({ model: 'tiny', messages, max_completion_tokens: 3, temperature: 0 });
    expect(r2.usage!.completion_tokens).toBeLessThanOrEqual(3);
  });

  it('streaming chat: SSE chunks add up to the non-streaming answer; include_usage gives a last usage chunk', async () => {
    const opts = { model: 'tiny', messages, max_tokens: 16, temperature: 1, seed: 7 };
    const whole = await client.chat.completions.create(opts);
    const stream = await client.chat.completions.create({ ...opts, stream: true, stream_options: { include_usage: true } });
    let content = '';
    let reasoning = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (first) expect(chunk.choices[0]!.delta.role).toBe('assistant');
      first = false;
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        content += c.delta.content ?? '';
        reasoning += (c.delta as { reasoning_content?: string }).reasoning_content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    expect(content).toBe(whole.choices[0]!.message.content ?? '');
    expect(reasoning).toBe((whole.choices[0]!.message as unknown as { reasoning_content: string | null }).reasoning_content ?? '');
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it('tool call round trip (scripted model): tool_calls out, tool result in, answer', async () => {
    const first = await scriptedClient.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER] });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect((choice.message as unknown as { reasoning_content: string }).reasoning_content).toBe('The user wants weather.');
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    // the developer message declared the tool in Harmony's functions namespace
    const prompt1 = tokenizer.decode(backend.prompts.at(-1)!);
    expect(prompt1).toContain('namespace functions {');
    expect(prompt1).toContain('type get_weather = (_: {');

    const second = await scriptedClient.chat.completions.create({
      model: 'scripted',
      tools: [WEATHER],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '{"temperatureC":20}' },
      ],
    });
    expect(second.choices[0]!.finish_reason).toBe('stop');
    expect(second.choices[0]!.message.content).toBe('It is 20 C in Paris.');
    const expected = renderConversation({
      system: {},
      developer: { tools: [{ name: 'get_weather', description: 'Weather in a city', parameters: WEATHER.function.parameters }] },
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}' },
        { role: 'tool', name: 'functions.get_weather', content: '{"temperatureC":20}' },
      ],
    });
    expect(backend.prompts.at(-1)).toEqual(expected);

    // streamed: the call arrives as tool_calls deltas
    const stream = await scriptedClient.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather?' }], tools: [WEATHER], stream: true });
    let name = '';
    let args = '';
    let id = '';
    let finish = '';
    for await (const chunk of stream)
      for (const c of chunk.choices) {
        for (const t of c.delta.tool_calls ?? []) {
          id ||= t.id ?? '';
          name += t.function?.name ?? '';
          args += t.function?.arguments ?? '';
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    expect([name, JSON.parse(args), finish]).toEqual(['get_weather', { city: 'Paris' }, 'tool_calls']);
    expect(id).toMatch(/^call_/);
  });

  it('stop strings end the answer before them, whole and streamed (scripted model)', async () => {
    // the prompt holds the tool's answer, so the script replies 'It is 20 C in Paris.'
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperatureC":20}' },
    ];
    const whole = await scriptedClient.chat.completions.create({ model: 'scripted', messages, tools: [WEATHER], stop: [' C in', 'zzz'] });
    expect(whole.choices[0]!.message.content).toBe('It is 20');
    expect(whole.choices[0]!.finish_reason).toBe('stop');
    const stream = await scriptedClient.chat.completions.create({ model: 'scripted', messages, tools: [WEATHER], stop: 'Paris', stream: true });
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    expect(content).toBe('It is 20 C in ');
  });

  it('tool_choice naming a function makes the prompt end in that call (real model)', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [WEATHER],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 4,
      temperature: 0,
    });
    expect(r.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    const base = renderConversation({ system: {}, developer: { tools: [{ name: 'get_weather', description: 'Weather in a city', parameters: WEATHER.function.parameters }] }, messages: [{ role: 'user', content: 'Weather?' }] });
    const header = tokenizer.decode(renderMessageTokens({ role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '' }));
    expect(r.usage!.prompt_tokens).toBeGreaterThan(base.length);
    expect(header).toContain('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>');
  });

  it('strict function tools (real model): a forced call\'s arguments parse and fit the parameters, in chat and Responses; schemas it cannot enforce are 400s', async () => {
    const parameters = { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] }, days: { type: 'integer' } }, required: ['city', 'days'], additionalProperties: false };
    const tool = { type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters, strict: true } };
    for (const seed of [1, 2]) {
      const r = await client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Weather?' }],
        tools: [tool],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        max_tokens: 80,
        seed,
      });
      expect(r.choices[0]!.finish_reason).toBe('tool_calls');
      const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.function.name).toBe('get_weather');
      const args = JSON.parse(call.function.arguments) as { city: string; days: number };
      expect(Object.keys(args).sort()).toEqual(['city', 'days']);
      expect(['Paris', 'Oslo']).toContain(args.city);
      expect(Number.isInteger(args.days)).toBe(true);
    }
    // tool_choice 'required' with two tools: the model picks the name, held to the declared ones
    const clock = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false }, strict: true } };
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Weather?' }], tools: [tool, clock], tool_choice: 'required', max_tokens: 80, seed });
      expect(r.choices[0]!.finish_reason).toBe('tool_calls');
      const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(['get_weather', 'get_time']).toContain(call.function.name);
      expect(Object.keys(JSON.parse(call.function.arguments) as object).sort()).toEqual(call.function.name === 'get_time' ? ['zone'] : ['city', 'days']);
    }
    const resp = await client.responses.create({
      model: 'tiny',
      input: 'Weather?',
      tools: [{ type: 'function', name: 'get_weather', parameters, strict: true }],
      tool_choice: { type: 'function', name: 'get_weather' },
      max_output_tokens: 80,
    });
    const item = resp.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    expect(['Paris', 'Oslo']).toContain((JSON.parse(item.arguments) as { city: string }).city);
    const bad = { ...tool, function: { ...tool.function, parameters: { type: 'object', properties: { city: { not: { type: 'integer' } } } } } };
    const e = await apiError(client.chat.completions.create({ model: 'tiny', messages, tools: [bad], max_tokens: 2 }));
    expect([e.status, e.param, e.code]).toEqual([400, 'tools[0].function.parameters', 'invalid_schema']);
    expect(e.message).toMatch(/'not' is not supported/);
    // a pattern beside a format, or one outside the subset, is skipped in a strict tool (its structure and the rest held)
    const loosely = { ...tool, function: { ...tool.function, parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] }, when: { type: 'string', format: 'date-time', pattern: '^2', maxLength: 12 } }, required: ['city', 'when'], additionalProperties: false } } };
    const held = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Weather?' }], tools: [loosely], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 120, seed: 3 });
    expect(held.choices[0]!.finish_reason).toBe('tool_calls');
    const a = JSON.parse((held.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments) as Record<string, unknown>;
    expect(Object.keys(a).sort()).toEqual(['city', 'when']);
    expect([...(a.when as string)].length).toBeLessThanOrEqual(12);
    // the same schema without strict is declared to the model, not enforced: no error
    const loose = await client.chat.completions.create({ model: 'tiny', messages, tools: [{ ...bad, function: { ...bad.function, strict: false } }], max_tokens: 2 });
    expect(loose.choices).toHaveLength(1);
    const e2 = await apiError(client.responses.create({ model: 'tiny', input: 'x', tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { a: { allOf: [{ type: 'string' }, { type: 'string' }] } } }, strict: true }], max_output_tokens: 2 }));
    expect([e2.status, e2.param, e2.code]).toEqual([400, 'tools[0].parameters', 'invalid_schema']);
  });

  it('Responses API streamed (real model): typed events in order, text deltas equal the final text, usage', async () => {
    const stream = await client.responses.create({ model: 'tiny', input: 'Say hello.', instructions: 'Be kind.', max_output_tokens: 12, temperature: 0, stream: true });
    const types: string[] = [];
    let text = '';
    let reasoning = '';
    let final: OpenAI.Responses.Response | undefined;
    let seq = -1;
    for await (const e of stream) {
      types.push(e.type);
      expect(e.sequence_number).toBe(seq + 1);
      seq = e.sequence_number;
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.reasoning_text.delta') reasoning += e.delta;
      if (e.type === 'response.completed' || e.type === 'response.incomplete') final = e.response;
    }
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(['response.completed', 'response.incomplete']).toContain(types.at(-1));
    expect(types.filter((t) => t === 'response.output_item.added').length).toBe(types.filter((t) => t === 'response.output_item.done').length);
    const prompt = renderConversation({ system: {}, developer: { instructions: 'Be kind.' }, messages: [{ role: 'user', content: 'Say hello.' }] });
    const ref = await generate(model, prompt, { maxTokens: 12, temperature: 0, parse: true }).result;
    expect(final!.usage).toMatchObject({ input_tokens: prompt.length, output_tokens: ref.tokens.length, total_tokens: prompt.length + ref.tokens.length });
    expect(text).toBe(ref.channels.final);
    expect(reasoning).toBe(ref.channels.analysis);
    const message = final!.output.find((o) => o.type === 'message');
    if (message) expect(message.content[0]).toMatchObject({ type: 'output_text', text });
    // non-streaming gives the same response body
    const whole = await client.responses.create({ model: 'tiny', input: 'Say hello.', instructions: 'Be kind.', max_output_tokens: 12, temperature: 0 });
    expect(whole.output_text).toBe(text);
    // the same counts, except that the repeated prompt finds more of itself in the prefix cache
    const { input_tokens_details: wholeCached, ...wholeCounts } = whole.usage!;
    const { input_tokens_details: streamedCached, ...streamedCounts } = final!.usage!;
    expect(wholeCounts).toEqual(streamedCounts);
    expect(wholeCached.cached_tokens).toBeGreaterThanOrEqual(streamedCached.cached_tokens);
    expect(wholeCached.cached_tokens).toBeGreaterThan(0);
    expect(wholeCached.cached_tokens).toBeLessThan(whole.usage!.input_tokens);
  });

  it('Responses API with a function tool (scripted): reasoning item, function_call item, function_call_output round trip', async () => {
    const tool = { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: WEATHER.function.parameters, strict: false };
    const r = await scriptedClient.responses.create({ model: 'scripted', input: 'Weather in Paris?', tools: [tool] });
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'function_call']);
    const call = r.output[1] as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call.name).toBe('get_weather');
    expect(JSON.parse(call.arguments)).toEqual({ city: 'Paris' });
    const r2 = await scriptedClient.responses.create({
      model: 'scripted',
      tools: [tool],
      input: [{ role: 'user', content: 'Weather in Paris?' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments }, { type: 'function_call_output', call_id: call.call_id, output: '{"temperatureC":20}' }],
    });
    expect(r2.status).toBe('completed');
    expect(r2.output_text).toBe('It is 20 C in Paris.');
  });

  it('errors in OpenAI shape: 400 (bad JSON, bad or missing parameter), 404 model, 413, context length', async () => {
    const post = (path: string, body: string, type = 'application/json'): Promise<Response> => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
    const bad = await post('/v1/chat/completions', '{"model": "tiny", "messages": [');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });

    const t = await apiError(client.chat.completions.create({ model: 'tiny', messages, temperature: 5 }));
    expect([t.status, t.param, t.type]).toEqual([400, 'temperature', 'invalid_request_error']);
    expect(t.message).toMatch(/temperature/);
    const m = await apiError(client.chat.completions.create({ model: 'tiny' } as never));
    expect([m.status, m.param, m.code]).toEqual([400, 'messages', 'missing_required_parameter']);
    const role = await apiError(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'robot', content: 'x' }] } as never));
    expect([role.status, role.param]).toEqual([400, 'messages[0].role']);
    const orphan = await apiError(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'nope', content: '1' }] }));
    expect([orphan.status, orphan.param]).toEqual([400, 'messages[1].tool_call_id']);
    const nf = await apiError(client.chat.completions.create({ model: 'gpt-4o', messages }));
    expect([nf.status, nf.code, nf.param]).toEqual([404, 'model_not_found', 'model']);
    expect(nf).toBeInstanceOf(OpenAI.NotFoundError);
    const big = await post('/v1/chat/completions', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }));
    expect(big.status).toBe(413);
    expect((await big.json()).error).toMatchObject({ code: 'request_too_large' });
    const long = await apiError(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'word '.repeat(1100) }] }));
    expect([long.status, long.code]).toEqual([400, 'context_length_exceeded']);
    expect(long.message).toMatch(/maximum context length is 1024 tokens/);
    const tooMany = await apiError(client.chat.completions.create({ model: 'tiny', messages, max_tokens: 5000 }));
    expect([tooMany.status, tooMany.param, tooMany.code]).toEqual([400, 'max_tokens', 'context_length_exceeded']);
    expect(tooMany.message).toMatch(new RegExp(`you requested ${rendered().length + 5000} tokens \\(${rendered().length} in the messages, 5000 in the completion\\)`));
    const unknown = await fetch(`${url}/v1/nothing`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.message).toMatch(/Unknown request URL/);
  });

  it('n choices: side by side on the engine, each as n = 1 with seed + i would give it, whole and streamed', async () => {
    const base = { model: 'tiny', messages, max_tokens: 6 } as const;
    // greedy: every choice the same tokens; the prompt counted once, the completions summed
    const one = await client.chat.completions.create({ ...base, temperature: 0 });
    const three = await client.chat.completions.create({ ...base, temperature: 0, n: 3 });
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of three.choices) {
      expect(c.message.content).toBe(one.choices[0].message.content);
      expect(c.finish_reason).toBe(one.choices[0].finish_reason);
    }
    expect(three.usage!.prompt_tokens).toBe(one.usage!.prompt_tokens);
    expect(three.usage!.completion_tokens).toBe(3 * one.usage!.completion_tokens);
    expect(three.usage!.total_tokens).toBe(one.usage!.prompt_tokens + 3 * one.usage!.completion_tokens);
    // sampled with a seed: choice i is n = 1 with seed + i
    const sampled = { ...base, temperature: 1, max_tokens: 12 };
    const pair = await client.chat.completions.create({ ...sampled, seed: 7, n: 2 });
    const s7 = await client.chat.completions.create({ ...sampled, seed: 7 });
    const s8 = await client.chat.completions.create({ ...sampled, seed: 8 });
    expect(pair.choices[0].message.reasoning_content ?? pair.choices[0].message.content).toBe(s7.choices[0].message.reasoning_content ?? s7.choices[0].message.content);
    expect(pair.choices[1].message.reasoning_content ?? pair.choices[1].message.content).toBe(s8.choices[0].message.reasoning_content ?? s8.choices[0].message.content);
    expect(pair.usage!.completion_tokens).toBe(s7.usage!.completion_tokens + s8.usage!.completion_tokens);
    // streamed: each index's deltas add up to that choice; a role chunk and a finish chunk each; usage after all
    const stream = await client.chat.completions.create({ ...sampled, seed: 7, n: 2, stream: true, stream_options: { include_usage: true } });
    const text = ['', ''], roles = [0, 0], finishes: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | undefined;
    let afterUsage = 0;
    for await (const c of stream) {
      if (usage) afterUsage++;
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        const d = ch.delta as { role?: string; content?: string | null; reasoning_content?: string };
        if (d.role) roles[ch.index]++;
        text[ch.index] += d.reasoning_content ?? d.content ?? '';
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
    const whole = (c: OpenAI.ChatCompletion.Choice) => (c.message as { reasoning_content?: string }).reasoning_content ?? c.message.content ?? '';
    expect(text).toEqual([whole(pair.choices[0]), whole(pair.choices[1])]);
    expect(roles).toEqual([1, 1]);
    expect(finishes).toEqual([pair.choices[0].finish_reason, pair.choices[1].finish_reason]);
    expect(usage).toEqual(pair.usage);
    expect(afterUsage).toBe(0);
    // more than 16 is a 400 naming n
    const tooMany = await apiError(client.chat.completions.create({ ...base, n: 17 }));
    expect(tooMany).toBeInstanceOf(OpenAI.APIError);
    expect([tooMany.status, tooMany.param]).toEqual([400, 'n']);
    // every sequence is back: nothing running or waiting
    const health = await (await fetch(`${url}/health`)).json();
    expect([health.running, health.waiting]).toEqual([0, 0]);
  });

  it('stored responses: previous_response_id continues exactly as sending the whole history; GET and DELETE /v1/responses/{id}', async () => {
    const opts = { model: 'tiny', max_output_tokens: 4, temperature: 0 } as const;
    const r1 = await client.responses.create({ ...opts, input: 'Hi', instructions: 'Be brief.' });
    expect(r1.store).toBe(true);
    expect(r1.previous_response_id).toBeNull();
    const r2 = await client.responses.create({ ...opts, input: 'And then?', previous_response_id: r1.id });
    expect(r2.previous_response_id).toBe(r1.id);
    // the same conversation sent whole (instructions are not carried over, as OpenAI's are not)
    const whole = await client.responses.create({
      ...opts,
      store: false,
      input: [{ role: 'user', content: 'Hi' }, ...(r1.output as unknown as OpenAI.Responses.ResponseInputItem[]), { role: 'user', content: 'And then?' }],
    });
    expect(whole.store).toBe(false);
    expect(r2.usage!.input_tokens).toBe(whole.usage!.input_tokens);
    expect(r2.output.map((o) => JSON.stringify({ ...o, id: '' }))).toEqual(whole.output.map((o) => JSON.stringify({ ...o, id: '' })));
    // a chain of three: r3 continues r2, which continued r1
    const r3 = await client.responses.create({ ...opts, input: 'Go on.', previous_response_id: r2.id });
    expect(r3.usage!.input_tokens).toBeGreaterThan(r2.usage!.input_tokens);
    // retrieve gives what create returned; a streamed response is stored as its final event's
    expect(await client.responses.retrieve(r1.id)).toEqual(r1);
    let streamedId = '';
    for await (const e of await client.responses.create({ ...opts, input: 'Hi', stream: true }))
      if (e.type === 'response.completed' || e.type === 'response.incomplete') streamedId = e.response.id;
    expect((await client.responses.retrieve(streamedId)).id).toBe(streamedId);
    // store: false keeps nothing; DELETE drops one; unknown ids are 404 / 400 naming previous_response_id
    expect((await apiError(client.responses.retrieve(whole.id))).status).toBe(404);
    expect(await client.responses.delete(r1.id)).toEqual({ id: r1.id, object: 'response', deleted: true });
    const gone = await apiError(client.responses.retrieve(r1.id));
    expect([gone.status, gone.code]).toEqual([404, 'not_found']);
    expect((await apiError(client.responses.delete(r1.id))).status).toBe(404);
    const missing = await apiError(client.responses.create({ ...opts, input: 'x', previous_response_id: r1.id }));
    expect([missing.status, missing.param, missing.code]).toEqual([400, 'previous_response_id', 'previous_response_not_found']);
    // r2 still continues: each stored response holds its whole conversation
    const r4 = await client.responses.create({ ...opts, input: 'Again.', previous_response_id: r2.id });
    expect(r4.usage!.input_tokens).toBeGreaterThan(r2.usage!.input_tokens);
  });

  it("Responses truncation 'auto': a long chain keeps fitting by dropping its oldest turns; 'disabled' ends in a 400", async () => {
    const engine = model.createEngine({ maxSequences: 1, maxBatchTokens: 64, maxContext: 256 });
    const own = createServer(engine, { modelName: 'tiny' });
    try {
      const c = new OpenAI({ baseURL: `${(await own.listen(0)).url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const say = (i: number) => `Turn ${i}: ${'tell me more about the weather in Paris today '.repeat(3)}`;
      const chain = async (truncation: 'auto' | 'disabled') => {
        const inputs: number[] = [];
        let prev: string | undefined;
        for (let i = 0; i < 8; i++) {
          const r = await c.responses.create({
            model: 'tiny', input: say(i), max_output_tokens: 8, temperature: 0, truncation, instructions: 'Be brief.',
            ...(prev ? { previous_response_id: prev } : {}),
          });
          expect(r.truncation).toBe(truncation);
          inputs.push(r.usage!.input_tokens);
          prev = r.id;
        }
        return inputs;
      };
      const auto = await chain('auto');
      for (const n of auto) expect(n + 8).toBeLessThanOrEqual(256);
      // each turn adds the same tokens until the context is full; then the oldest turns go (untruncated, the last
      // would be the first plus seven turns)
      const turn = auto[1] - auto[0];
      expect(auto[7]).toBeLessThan(auto[0] + 7 * turn);
      const e = await apiError(chain('disabled'));
      expect([e.status, e.code]).toEqual([400, 'context_length_exceeded']);
    } finally {
      await own.close(1000);
    }
  });

  it('GET /metrics: Prometheus text with the HTTP responses by route and status, tokens and finish reasons, engine gauges', async () => {
    const engine = model.createEngine({ maxSequences: 2, maxBatchTokens: 32, maxContext: 256 });
    const own = createServer(engine, { modelName: 'tiny', apiKey: 'k' });  // /metrics, like /health, needs no key
    try {
      const base = (await own.listen(0)).url;
      const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'k', maxRetries: 0 });
      const a = await c.chat.completions.create({ model: 'tiny', messages, max_tokens: 3, temperature: 0 });
      let streamed: OpenAI.CompletionUsage | undefined;
      for await (const ch of await c.chat.completions.create({ model: 'tiny', messages, max_tokens: 4, n: 2, stream: true, stream_options: { include_usage: true } }))
        if (ch.usage) streamed = ch.usage;
      await c.chat.completions.create({ model: 'tiny', messages, temperature: 9 }).catch(() => undefined);  // 400
      await fetch(`${base}/v1/nothing`, { headers: { authorization: 'Bearer k' } });  // 404
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const value = (sample: string): number => {
        const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
        expect(line, sample).toBeDefined();
        return Number(line!.slice(sample.length + 1));
      };
      expect(value('gptoss_http_requests_total{route="/v1/chat/completions",status="200"}')).toBe(2);
      expect(value('gptoss_http_requests_total{route="/v1/chat/completions",status="400"}')).toBe(1);
      expect(value('gptoss_http_requests_total{route="unmatched",status="404"}')).toBe(1);
      expect(value('gptoss_generation_tokens_total{model="tiny"}')).toBe(a.usage!.completion_tokens + streamed!.completion_tokens);
      expect(value('gptoss_prompt_tokens_total{model="tiny"}')).toBe(3 * a.usage!.prompt_tokens);  // one a choice
      expect(value('gptoss_generations_finished_total{model="tiny",finish_reason="length"}')).toBe(3);
      expect(value('gptoss_requests_running{model="tiny"}')).toBe(0);
      expect(value('gptoss_requests_waiting{model="tiny"}')).toBe(0);
      expect(value('gptoss_kv_blocks_free{model="tiny"}')).toBe(value('gptoss_kv_blocks_total{model="tiny"}'));
      expect(value('gptoss_engine_steps_total{model="tiny"}')).toBeGreaterThan(0);
      // every sample has its metric's HELP and TYPE lines before it
      for (const l of text.trimEnd().split('\n').filter((x) => !x.startsWith('#'))) {
        const name = l.slice(0, l.indexOf('{'));
        expect(text.indexOf(`# TYPE ${name} `), name).toBeGreaterThanOrEqual(0);
        expect(text.indexOf(`# TYPE ${name} `)).toBeLessThan(text.indexOf(l));
      }
    } finally {
      await own.close(1000);
    }
  });

  it('CORS: listed origins (or *) get the headers, on preflights before the API key, on JSON and SSE answers; others none', async () => {
    const own = createServer(model.createEngine({ maxSequences: 1, maxBatchTokens: 32, maxContext: 256 }), { modelName: 'tiny', apiKey: 'k', corsOrigins: ['http://localhost:5173'] });
    const any = createServer(model.createEngine({ maxSequences: 1, maxBatchTokens: 32, maxContext: 256 }), { modelName: 'tiny', corsOrigins: ['*'] });
    try {
      const base = (await own.listen(0)).url, anyBase = (await any.listen(0)).url;
      const pre = await fetch(`${base}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
      expect(pre.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os');
      expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
      const post = (b: string, origin: string, body: Record<string, unknown>) =>
        fetch(`${b}/v1/chat/completions`, { method: 'POST', headers: { origin, authorization: 'Bearer k', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages, max_tokens: 2, ...body }) });
      const ok = await post(base, 'http://localhost:5173', {});
      expect(ok.status).toBe(200);
      expect([ok.headers.get('access-control-allow-origin'), ok.headers.get('vary')]).toEqual(['http://localhost:5173', 'Origin']);
      const sse = await post(base, 'http://localhost:5173', { stream: true });
      expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
      expect(sse.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
      expect(await sse.text()).toMatch(/data: \[DONE\]/);
      const other = await post(base, 'https://evil.example', {});
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      await other.text();
      const otherPre = await fetch(`${base}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      expect(otherPre.headers.get('access-control-allow-origin')).toBeNull();
      const star = await post(anyBase, 'https://anywhere.example', {});
      expect(star.headers.get('access-control-allow-origin')).toBe('*');
      await star.text();
      // without the option: no CORS headers at all (the main server of these tests)
      const none = await fetch(`${url}/health`, { headers: { origin: 'http://localhost:5173' } });
      expect(none.headers.get('access-control-allow-origin')).toBeNull();
      const spare = model.createEngine({ maxSequences: 1, maxBatchTokens: 32, maxContext: 256 });
      expect(() => createServer(spare, { corsOrigins: ['localhost:5173/path'] })).toThrow(/corsOrigins/);
      await spare.close(0);
    } finally {
      await own.close(1000);
      await any.close(1000);
    }
  });

  it('an API key: /v1 needs the bearer token (401 invalid_api_key otherwise), /health does not', async () => {
    const keyed = createServer(model.createEngine({ maxSequences: 1, maxBatchTokens: 32, maxContext: 256 }), { modelName: 'tiny', apiKey: 'sk-test-123' });
    try {
      const base = (await keyed.listen(0)).url;
      const good = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test-123', maxRetries: 0 });
      const r = await good.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, temperature: 0 });
      expect(r.choices[0].finish_reason).toBe('length');
      expect((await good.models.list()).data.map((m) => m.id)).toEqual(['tiny']);
      for (const key of ['sk-test-124', 'sk-test-12', 'sk-test-1234']) {
        const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
        const e = await apiError(bad.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 }));
        expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
        expect([e.status, e.code]).toEqual([401, 'invalid_api_key']);
      }
      const none = await fetch(`${base}/v1/models`);
      expect(none.status).toBe(401);
      // every route but /health and /metrics: /tokenize too
      const tok = await fetch(`${base}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x' }) });
      expect(tok.status).toBe(401);
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
      expect((await none.json()).error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
      expect((await fetch(`${base}/health`)).status).toBe(200);
      const spare = model.createEngine({ maxSequences: 1, maxBatchTokens: 32, maxContext: 256 });
      expect(() => createServer(spare, { apiKey: '' })).toThrow(/apiKey must not be empty/);
      await spare.close(0);
    } finally {
      await keyed.close(1000);
    }
  });

  it('legacy /v1/completions: raw text (special tokens as written) or ids, the tokens of generate(), n and several prompts, echo, stop, streamed', async () => {
    const harmonyText = '<|start|>user<|message|>What is the capital of France?<|end|><|start|>assistant';
    const ids = tokenizer.encode(harmonyText, { allowSpecial: 'all' });
    expect(ids.length).toBeLessThan(tokenizer.encode(harmonyText).length);  // the special tokens are one id each
    const ref = await generate(model, ids, { maxTokens: 10, temperature: 0.8, seed: 5 }).result;
    const r = await client.completions.create({ model: 'tiny', prompt: harmonyText, max_tokens: 10, temperature: 0.8, seed: 5 });
    expect(r.object).toBe('text_completion');
    expect(r.id).toMatch(/^cmpl-/);
    expect(r.choices[0].text).toBe(ref.text);
    expect(r.choices[0].finish_reason).toBe(ref.finishReason === 'length' ? 'length' : 'stop');
    expect(r.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: ref.tokens.length, total_tokens: ids.length + ref.tokens.length });
    // the same prompt as ids gives the same text
    const byIds = await client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 10, temperature: 0.8, seed: 5 });
    expect(byIds.choices[0].text).toBe(ref.text);
    // without max_tokens: OpenAI's 16
    const dflt = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', temperature: 0 });
    expect(dflt.usage!.completion_tokens).toBeLessThanOrEqual(16);
    // two prompts x n = 2: four choices, prompt-major; each prompt counted once; echo puts the prompt first
    const two = await client.completions.create({ model: 'tiny', prompt: ['Hello', 'The sky is'], n: 2, max_tokens: 4, temperature: 0, echo: true });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(two.choices[0].text.startsWith('Hello') && two.choices[2].text.startsWith('The sky is')).toBe(true);
    expect(two.choices[1].text).toBe(two.choices[0].text);  // greedy
    const lens = ['Hello', 'The sky is'].map((t) => tokenizer.encode(t).length);
    expect(two.usage!.prompt_tokens).toBe(lens[0] + lens[1]);
    // a stop string ends the text before it
    const whole = await client.completions.create({ model: 'tiny', prompt: 'The sky is', max_tokens: 12, temperature: 0 });
    const text = whole.choices[0].text;
    if (text.length > 3) {
      const stop = text.slice(2, 4);
      const cut = await client.completions.create({ model: 'tiny', prompt: 'The sky is', max_tokens: 12, temperature: 0, stop });
      expect(cut.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
      expect(cut.choices[0].finish_reason).toBe('stop');
    }
    // streamed: each index's chunks add up to the whole choice; one finish chunk each; usage last
    const params = { model: 'tiny', prompt: ['Hello', 'The sky is'], n: 2, max_tokens: 6, temperature: 1, seed: 11, echo: true };
    const full = await client.completions.create(params);
    const got = ['', '', '', ''], finishes: (string | null)[] = [null, null, null, null];
    let u: OpenAI.CompletionUsage | undefined;
    for await (const c of await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } })) {
      if (c.usage) u = c.usage;
      for (const ch of c.choices) {
        got[ch.index] += ch.text;
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
    expect(got).toEqual(full.choices.map((c) => c.text));
    expect(finishes).toEqual(full.choices.map((c) => c.finish_reason));
    expect(u).toEqual(full.usage);
    // errors naming the parameter
    const err = (body: Record<string, unknown>) => apiError(client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, ...body } as never));
    const lp = await err({ logprobs: 2, echo: true });
    expect([lp.status, lp.param, lp.code]).toEqual([400, 'echo', 'unsupported_parameter']);
    expect(lp.message).toMatch(/echo with logprobs is not supported/);
    const lp6 = await err({ logprobs: 6 });
    expect([lp6.status, lp6.param]).toEqual([400, 'logprobs']);
    const sfx = await err({ suffix: 'end' });
    expect([sfx.status, sfx.param, sfx.code]).toEqual([400, 'suffix', 'unsupported_parameter']);
    const best = await err({ best_of: 3 });
    expect([best.status, best.param]).toEqual([400, 'best_of']);
    const empty = await err({ prompt: [] });
    expect([empty.status, empty.param]).toEqual([400, 'prompt']);
    const badId = await err({ prompt: [[1, 2], [3, 300000]] });
    expect([badId.status, badId.param]).toEqual([400, 'prompt[1]']);
    expect(badId.message).toMatch(/prompt\[1\]\[1\] = 300000 is not a token id/);
    const many = await err({ prompt: Array.from({ length: 8 }, () => 'x'), n: 16 });
    expect([many.status, many.param]).toEqual([400, 'n']);
    const health = await (await fetch(`${url}/health`)).json();
    expect([health.running, health.waiting]).toEqual([0, 0]);
  });

  it("POST /tokenize and /detokenize (vLLM's): a prompt as /v1/completions encodes it, messages as chat renders them", async () => {
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, json: await r.json() };
    };
    const text = '<|start|>user<|message|>Hi<|end|>';
    const t = await post('/tokenize', { model: 'tiny', prompt: text });
    expect(t.status).toBe(200);
    expect(t.json.tokens).toEqual(tokenizer.encode(text, { allowSpecial: 'all' }));
    expect([t.json.count, t.json.max_model_len]).toEqual([t.json.tokens.length, 1024]);
    // messages: exactly the prompt the chat endpoint feeds the model (its usage.prompt_tokens)
    const m = await post('/tokenize', { messages, reasoning_effort: 'low' });
    expect(m.json.tokens).toEqual(rendered('low'));
    const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1, reasoning_effort: 'low' });
    expect(m.json.count).toBe(chat.usage!.prompt_tokens);
    // and back
    const d = await post('/detokenize', { model: 'tiny', tokens: t.json.tokens });
    expect([d.status, d.json.prompt]).toEqual([200, text]);
    // errors naming the parameter
    const both = await post('/tokenize', { prompt: 'x', messages });
    expect([both.status, both.json.error.param]).toEqual([400, 'messages']);
    const neither = await post('/tokenize', {});
    expect([neither.status, neither.json.error.param]).toEqual([400, 'prompt']);
    const bad = await post('/detokenize', { tokens: [1, -2] });
    expect([bad.status, bad.json.error.param]).toEqual([400, 'tokens[1]']);
    const other = await post('/tokenize', { model: 'gpt-4o', prompt: 'x' });
    expect([other.status, other.json.error.code]).toEqual([404, 'model_not_found']);
  });

  it('logprobs: /v1/completions gives the log-probabilities of generate() (real model), whole and streamed', async () => {
    const prompt = 'The sky is';
    const ids = tokenizer.encode(prompt);
    const ref = await generate(model, ids, { maxTokens: 12, temperature: 0.9, seed: 21, logprobs: 3 }).result;
    const r = await client.completions.create({ model: 'tiny', prompt, max_tokens: 12, temperature: 0.9, seed: 21, logprobs: 3 });
    const lp = r.choices[0].logprobs!;
    expect(r.choices[0].text).toBe(ref.text);
    // every token whose text is in the answer: all of them, but a stop token (its text is left out)
    const n = ref.finishReason === 'stop' ? ref.tokens.length - 1 : ref.tokens.length;
    expect(lp.tokens).toEqual(ref.tokens.slice(0, n).map((t) => tokenizer.decode([t])));
    expect(lp.token_logprobs).toEqual(ref.logprobs!.slice(0, n).map((l) => l.logprob));
    expect(lp.top_logprobs).toEqual(ref.logprobs!.slice(0, n).map((l) => Object.fromEntries(l.top.map((a) => [tokenizer.decode([a.id]), a.logprob]))));
    let offset = 0;
    expect(lp.text_offset).toEqual(ref.tokens.slice(0, n).map((t) => ((offset += tokenizer.decode([t]).length), offset - tokenizer.decode([t]).length)));
    expect(lp.tokens!.length).toBeGreaterThan(3);
    // the drawn token is never more likely than the row's most likely one
    for (const l of ref.logprobs!) expect(l.logprob).toBeLessThanOrEqual(l.top[0]!.logprob);
    // streamed: the chunks' logprobs add up to the whole
    const joined = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] };
    for await (const c of await client.completions.create({ model: 'tiny', prompt, max_tokens: 12, temperature: 0.9, seed: 21, logprobs: 3, stream: true })) {
      const l = c.choices[0]?.logprobs;
      if (!l) continue;
      joined.tokens.push(...l.tokens!);
      joined.token_logprobs.push(...l.token_logprobs!);
      joined.top_logprobs.push(...(l.top_logprobs as Record<string, number>[]));
      joined.text_offset.push(...l.text_offset!);
    }
    expect(joined).toEqual(lp);
    // logprobs: 0 gives the drawn tokens' and no alternatives; none asked: null
    const zero = await client.completions.create({ model: 'tiny', prompt, max_tokens: 4, temperature: 0, logprobs: 0 });
    expect(zero.choices[0].logprobs!.top_logprobs!.every((t) => Object.keys(t as object).length === 0)).toBe(true);
    expect((await client.completions.create({ model: 'tiny', prompt, max_tokens: 2 })).choices[0].logprobs).toBeNull();
  });

  it('logprobs: chat and Responses report the answer tokens (not reasoning, tool calls or Harmony tokens), whole and streamed (scripted)', async () => {
    const answerIds = tokenizer.encode('It is 20 C in Paris.');
    const want = answerIds.map((id) => {
      const l = scriptedLogprobs(id, 2);
      return { token: tokenizer.decode([id]), logprob: l.logprob, bytes: [...tokenizer.tokenBytes(id)], top_logprobs: l.top.map((a) => ({ token: tokenizer.decode([a.id]), logprob: a.logprob, bytes: [...tokenizer.tokenBytes(a.id)] })) };
    });
    const tools = [WEATHER];
    const first = await scriptedClient.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, logprobs: true, top_logprobs: 2 });
    // a tool call and reasoning only: no answer tokens
    expect(first.choices[0].logprobs).toEqual({ content: [], refusal: null });
    const call = first.choices[0].message.tool_calls![0]!;
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"temperatureC":20}' },
    ];
    const second = await scriptedClient.chat.completions.create({ model: 'scripted', messages: history, tools, logprobs: true, top_logprobs: 2 });
    expect(second.choices[0].message.content).toBe('It is 20 C in Paris.');
    expect(second.choices[0].logprobs!.content).toEqual(want);
    // streamed: each content chunk carries the tokens its text starts; together, the whole
    const streamed: unknown[] = [];
    let text = '';
    for await (const c of await scriptedClient.chat.completions.create({ model: 'scripted', messages: history, tools, logprobs: true, top_logprobs: 2, stream: true })) {
      const ch = c.choices[0];
      if (!ch) continue;
      text += ch.delta.content ?? '';
      if (ch.delta.content) expect(ch.logprobs).not.toBeNull();
      streamed.push(...(ch.logprobs?.content ?? []));
    }
    expect(text).toBe('It is 20 C in Paris.');
    expect(streamed).toEqual(want);
    // a stop string: only the tokens whose text starts before it
    const cut = await scriptedClient.chat.completions.create({ model: 'scripted', messages: history, tools, logprobs: true, stop: ' C in' });
    expect(cut.choices[0].message.content).toBe('It is 20');
    let chars = 0;
    const kept = answerIds.filter((id) => ((chars += tokenizer.decode([id]).length), chars - tokenizer.decode([id]).length < 'It is 20'.length));
    expect(cut.choices[0].logprobs!.content!.map((e) => e.token)).toEqual(kept.map((id) => tokenizer.decode([id])));
    expect(cut.choices[0].logprobs!.content!.every((e) => e.top_logprobs.length === 0)).toBe(true);
    // without logprobs: null
    expect((await scriptedClient.chat.completions.create({ model: 'scripted', messages: history, tools })).choices[0].logprobs).toBeNull();

    // Responses: include 'message.output_text.logprobs' with top_logprobs; the output_text part and the deltas carry them
    const tool = { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: WEATHER.function.parameters, strict: false };
    const input: OpenAI.Responses.ResponseInput = [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"temperatureC":20}' },
    ];
    const opts = { model: 'scripted', tools: [tool], input, include: ['message.output_text.logprobs' as const], top_logprobs: 2 };
    const r = await scriptedClient.responses.create(opts);
    const part = (r.output.find((o) => o.type === 'message') as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText;
    expect(part.text).toBe('It is 20 C in Paris.');
    expect(part.logprobs).toEqual(want);
    const deltas: unknown[] = [];
    let done: unknown = null;
    for await (const e of await scriptedClient.responses.create({ ...opts, stream: true })) {
      if (e.type === 'response.output_text.delta') deltas.push(...e.logprobs);
      if (e.type === 'response.output_text.done') done = e.logprobs;
    }
    expect(deltas).toEqual(want);
    expect(done).toEqual(want);
    // without include: empty lists, as before
    const plain = await scriptedClient.responses.create({ model: 'scripted', tools: [tool], input });
    expect(((plain.output.find((o) => o.type === 'message') as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText).logprobs).toEqual([]);
  });

  it('logit_bias, presence_penalty and frequency_penalty: the tokens generate() draws with them, chat and completions', async () => {
    const sampling = { temperature: 0.9, seed: 31, presence_penalty: 1.5, frequency_penalty: 0.5, logit_bias: { '1000': 2, '2000': -3 } };
    const own = { temperature: 0.9, seed: 31, presencePenalty: 1.5, frequencyPenalty: 0.5, logitBias: { 1000: 2, 2000: -3 } };
    const ids = tokenizer.encode('Once upon a time');
    const ref = await generate(model, ids, { maxTokens: 12, ...own }).result;
    const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, ...sampling });
    expect(r.choices[0].text).toBe(ref.text);
    expect(r.usage!.completion_tokens).toBe(ref.tokens.length);
    // the penalties change the draws (the same request without them differs)
    const unpenalised = await generate(model, ids, { maxTokens: 12, temperature: 0.9, seed: 31 }).result;
    expect(unpenalised.tokens).not.toEqual(ref.tokens);
    // +100 makes a token every draw's
    const forced = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 5, temperature: 1, logit_bias: { '12345': 100 } });
    expect(forced.choices[0].text).toBe(tokenizer.decode([12345, 12345, 12345, 12345, 12345]));
    // chat: the same as generate() on the rendered prompt, streamed too
    const chatRef = await generate(model, rendered(), { maxTokens: 16, parse: true, ...own }).result;
    const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, ...sampling });
    expect(chat.usage!.completion_tokens).toBe(chatRef.tokens.length);
    expect(chat.choices[0].message.content ?? '').toBe(chatRef.channels.final);
    expect((chat.choices[0].message as unknown as { reasoning_content: string | null }).reasoning_content ?? '').toBe(chatRef.channels.analysis);
    let reasoning = '';
    for await (const c of await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, ...sampling, stream: true }))
      reasoning += (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    expect(reasoning).toBe(chatRef.channels.analysis);
    // keys that are no token id are a 400 naming logit_bias; values out of range too
    for (const bias of [{ abc: 1 }, { '201088': 1 }, { '-5': 1 }, { '5': 101 }]) {
      const e = await apiError(client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, logit_bias: bias } as never));
      expect(e.status, JSON.stringify(bias)).toBe(400);
      expect(e.param).toMatch(/^logit_bias/);
    }
    const pe = await apiError(client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, frequency_penalty: -2.5 }));
    expect([pe.status, pe.param]).toEqual([400, 'frequency_penalty']);
  });

  it('structured outputs: response_format / text.format hold the answer to the schema token by token (scripted); schemas it cannot enforce are 400s', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' }, temperatureC: { type: 'integer' } }, required: ['city', 'temperatureC'], additionalProperties: false };
    const ask: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris? Reply in JSON.' }];
    const before = backend.maskedDraws;
    const r = await scriptedClient.chat.completions.create({ model: 'scripted', messages: ask, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } } });
    expect(JSON.parse(r.choices[0].message.content!)).toEqual({ city: 'Paris', temperatureC: 20 });
    // only the answer's draws were masked (its tokens and <|return|>), not the reasoning's or the header's
    const answerTokens = tokenizer.encode('{"city": "Paris", "temperatureC": 20}').length + 1;
    expect(backend.maskedDraws - before).toBe(answerTokens);
    // an answer the schema does not allow never gets through: the mask forbids its token (a 500 here, where a model would draw another)
    const strict = { ...schema, properties: { ...schema.properties, temperatureC: { type: 'string' } } };
    const bad = await apiError(scriptedClient.chat.completions.create({ model: 'scripted', messages: ask, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema: strict } } }));
    expect(bad.status).toBe(500);
    expect(bad.message).toMatch(/the mask forbids the scripted token/);
    // the Responses API's text.format, and json_object
    const rr = await scriptedClient.responses.create({ model: 'scripted', input: 'Weather in Paris? Reply in JSON.', text: { format: { type: 'json_schema', name: 'weather', schema, strict: true } } });
    expect(JSON.parse(rr.output_text)).toEqual({ city: 'Paris', temperatureC: 20 });
    expect((rr.text as { format: { type: string } }).format.type).toBe('json_schema');
    const jo = await scriptedClient.chat.completions.create({ model: 'scripted', messages: ask, response_format: { type: 'json_object' } });
    expect(JSON.parse(jo.choices[0].message.content!)).toEqual({ city: 'Paris', temperatureC: 20 });
    // 400s naming the parameter: a keyword that cannot be enforced, a missing schema, an unknown type
    const e1 = await apiError(client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'integer', multipleOf: 5 } } } }));
    expect([e1.status, e1.param, e1.code]).toEqual([400, 'response_format.json_schema.schema', 'invalid_schema']);
    expect(e1.message).toMatch(/the keyword 'multipleOf' is not supported/);
    const e2 = await apiError(client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, response_format: { type: 'json_schema', json_schema: { name: 'x' } } } as never));
    expect([e2.status, e2.param]).toEqual([400, 'response_format.json_schema.schema']);
    const e3 = await apiError(client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, response_format: { type: 'yaml' } } as never));
    expect([e3.status, e3.param]).toEqual([400, 'response_format.type']);
    const e4 = await apiError(client.responses.create({ model: 'tiny', input: 'Hi', max_output_tokens: 2, text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object', properties: { a: { type: 'string', pattern: '\\bx' } } } } } }));
    expect([e4.status, e4.param, e4.code]).toEqual([400, 'text.format.schema', 'invalid_schema']);
    expect(e4.message).toMatch(/#\.properties\.a\.pattern: pattern "\\\\bx": a word boundary at offset 1 is not supported/);
  });

  it('parameters the server does not implement: a 400 naming each, unless at their neutral value', async () => {
    const chat = (extra: Record<string, unknown>) => client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, ...extra } as never);
    const cases: [Record<string, unknown>, string, RegExp][] = [
    ];
    for (const [extra, param, why] of cases) {
      const e = await apiError(chat(extra));
      expect([e.status, e.param, e.code, e.type], JSON.stringify(extra)).toEqual([400, param, 'unsupported_parameter', 'invalid_request_error']);
      expect(e.message).toMatch(why);
      expect(e.message).toMatch(new RegExp(`${param.replace(".", "\\.")} is not supported`));
    }
    // out of range is a plain validation error naming the parameter
    const range = await apiError(chat({ presence_penalty: 3 }));
    expect([range.status, range.param]).toEqual([400, 'presence_penalty']);
    // alternatives without logprobs: true would be dropped, so they are a 400 too
    const top = await apiError(chat({ top_logprobs: 2 }));
    expect([top.status, top.param]).toEqual([400, 'top_logprobs']);
    expect(top.message).toMatch(/top_logprobs needs logprobs: true/);
    const top21 = await apiError(chat({ logprobs: true, top_logprobs: 21 }));
    expect([top21.status, top21.param]).toEqual([400, 'top_logprobs']);
    // neutral values are accepted and change nothing: the same tokens as the plain request (greedy)
    const plain = await chat({ temperature: 0 });
    const neutral = await chat({ temperature: 0, logprobs: false, top_logprobs: 0, response_format: { type: 'text' }, presence_penalty: 0, frequency_penalty: 0, logit_bias: {} });
    expect(neutral.choices[0].message.content).toBe(plain.choices[0].message.content);
    expect(neutral.usage).toEqual(plain.usage);
    // the Responses API: includes other than logprobs pass
    const resp = (extra: Record<string, unknown>) => client.responses.create({ model: 'tiny', input: 'Hi', max_output_tokens: 2, ...extra } as never);
    const ok = await resp({ text: { format: { type: 'text' } }, include: ['reasoning.encrypted_content'], temperature: 0 });
    expect(ok.status).toBe('incomplete');  // 2 tokens: cut by max_output_tokens, but served
  });

  it('429 when the queue is full; a client that disconnects frees its sequence and KV blocks', async () => {
    const engine = model.createEngine({ maxSequences: 1, maxBatchTokens: 64, maxContext: 1024, maxQueue: 0 });
    const small = createServer(engine, { modelName: 'tiny' });
    const base = (await small.listen(0)).url;
    const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
    const hang = new AbortController();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages, max_tokens: 800, stream: true, temperature: 1 }),
      signal: hang.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk: it is running
    expect(engine.stats().running).toBe(1);
    const full = await apiError(c.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 }));
    expect(full).toBeInstanceOf(OpenAI.RateLimitError);
    expect(full.code).toBe('queue_full');
    hang.abort(); // disconnect mid-stream
    await reader.cancel().catch(() => undefined);
    const t0 = Date.now();
    while (engine.stats().running > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0 });
    expect(engine.stats().freeBlocks).toBe(engine.stats().totalBlocks);
    expect(engine.stats().steps).toBeLessThan(200); // cancelled long before its 800 tokens
    await small.close(100);
  });

  it('graceful shutdown: in-flight requests finish or are cancelled by the deadline; new ones get 503', async () => {
    const engine = model.createEngine({ maxSequences: 2, maxBatchTokens: 64, maxContext: 1024 });
    const s = createServer(engine, { modelName: 'tiny' });
    const base = (await s.listen(0)).url;
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages, max_tokens: 900, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const closing = s.close(300);
    await new Promise((r) => setTimeout(r, 20));
    const late = await fetch(`${base}/v1/models`).catch(() => null);
    if (late) expect(late.status).toBe(503);
    let tail = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      tail += new TextDecoder().decode(value);
    }
    await closing;
    expect(tail).toContain('"finish_reason":"stop"'); // cut: the stream still ends properly
    expect(tail.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(engine.stats().freeBlocks).toBe(engine.stats().totalBlocks);
    await expect(fetch(`${base}/health`)).rejects.toThrow();
  });
});
