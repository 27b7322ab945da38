// generate() and ChatSession: on the tiny-a fixture (token ids; vocab 1024), on a random model with
// the full o200k_harmony vocabulary (text and conversations), and on a scripted stand-in for the
// model where the Harmony plumbing (channels, tool calls, history) needs known output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, generate, ChatSession, createRng, sampleFromLogits, type GptOssModel, type GenerationEvent, type Session } from '../lib/index.js';
import { renderConversation, type Conversation } from '../lib/harmony/index.js';
import { tokenizer, SPECIAL_TOKENS as S } from '../lib/tokenizer.js';
import { fixtureDir, readJson } from './helpers/fixtures.js';
import { writeCheckpoint, FULL_VOCAB_TINY } from './helpers/checkpoint.js';
import { useCpuModel } from './helpers/engine.js';
import { assistantReply } from './helpers/scripted-backend.js';

const prompt = readJson<number[]>('tiny-a', 'tokens.json');
const greedy = readJson<number[]>('tiny-a', 'greedy.json');

async function collect(stream: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const out: GenerationEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

describe('generate on tiny-a (CPU)', () => {
  const tiny = useCpuModel('tiny-a');

  it('greedy continuation equals transformers generate() (greedy.json)', async () => {
    const stream = generate(tiny.model, prompt, { temperature: 0, maxTokens: greedy.length, stopTokens: [] });
    const events = await collect(stream);
    const result = await stream.result;
    expect(result.tokens).toEqual(greedy);
    expect(events.filter((e) => e.type === 'token').map((e) => (e as { id: number }).id)).toEqual(greedy);
    expect(result.finishReason).toBe('length');
    expect(result.usage).toEqual({ promptTokens: prompt.length, completionTokens: greedy.length, cachedPromptTokens: 0 });
    expect(result.timings.prefillMs).toBeGreaterThan(0);
    expect(result.timings.tokensPerSecond).toBeGreaterThan(0);
    expect(result.text).toBe(tokenizer.decode(greedy));
    // the same through the method attached to GptOssModel
    expect((await tiny.model.generate(prompt, { temperature: 0, maxTokens: greedy.length, stopTokens: [] }).done()).tokens).toEqual(greedy);
  });

  it('same seed, same tokens; another seed, other tokens', async () => {
    const opts = { temperature: 1.5, maxTokens: 24, stopTokens: [] };
    const a = await generate(tiny.model, prompt, { ...opts, seed: 1234 }).result;
    const b = await generate(tiny.model, prompt, { ...opts, seed: 1234 }).result;
    const c = await generate(tiny.model, prompt, { ...opts, seed: 1235 }).result;
    expect(a.tokens).toHaveLength(24);
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    expect(a.seed).toBe(1234);
    // an unseeded run reports its seed, and that seed reproduces it
    const d = await generate(tiny.model, prompt, opts).result;
    expect((await generate(tiny.model, prompt, { ...opts, seed: d.seed }).result).tokens).toEqual(d.tokens);
  });

  it('samples on the device exactly as sampleFromLogits does on the host', async () => {
    const opts = { temperature: 0.9, topK: 50, topP: 0.95, minP: 0.01 };
    const result = await generate(tiny.model, prompt, { ...opts, seed: 77, maxTokens: 12, stopTokens: [] }).result;
    const rng = createRng(77);
    const session = tiny.model.createSession({ maxContext: 64 });
    let logits = await session.prefill(prompt);
    const host: number[] = [];
    for (let i = 0; i < 12; i++) {
      host.push(sampleFromLogits(logits, opts, rng.nextUniform()));
      logits = await session.step(host[i]!);
    }
    await session.dispose();
    expect(result.tokens).toEqual(host);
  });

  it('maxTokens bounds the completion; stop tokens end it early', async () => {
    const r = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 5, stopTokens: [] }).result;
    expect(r.tokens).toEqual(greedy.slice(0, 5));
    expect(r.finishReason).toBe('length');
    const s = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 20, stopTokens: [greedy[3]!] }).result;
    expect(s.tokens).toEqual(greedy.slice(0, 4));
    expect(s.finishReason).toBe('stop');
    expect(s.stopToken).toBe(greedy[3]);
    expect(s.text).toBe(tokenizer.decode(greedy.slice(0, 3)));
    const none = await generate(tiny.model, prompt, { maxTokens: 0 }).result;
    expect(none.tokens).toEqual([]);
  });

  it('abort ends generation at once: no further forward passes, finishReason abort', async () => {
    const session = tiny.model.createSession({ maxContext: 512 });
    const controller = new AbortController();
    const stream = generate(tiny.model, prompt, { temperature: 1, seed: 3, maxTokens: 400, stopTokens: [], signal: controller.signal, session });
    let seen = 0;
    for await (const e of stream) {
      if (e.type === 'token' && ++seen === 3) controller.abort();
    }
    const r = await stream.result;
    expect(r.finishReason).toBe('abort');
    expect(r.tokens.length).toBeGreaterThanOrEqual(3);
    expect(r.tokens.length).toBeLessThanOrEqual(4); // at most the one sample already in flight
    // the prompt and every token but the last were fed; nothing after the abort
    expect(session.length).toBeLessThanOrEqual(prompt.length + r.tokens.length);
    await session.dispose();

    // its own session is disposed; an already-aborted signal runs nothing
    const pre = await generate(tiny.model, prompt, { signal: AbortSignal.abort(), maxTokens: 10 }).result;
    expect(pre.finishReason).toBe('abort');
    expect(pre.tokens).toEqual([]);
    const viaStream = generate(tiny.model, prompt, { temperature: 0, maxTokens: 400, stopTokens: [] });
    setTimeout(() => viaStream.abort(), 5);
    expect((await viaStream.result).finishReason).toBe('abort');
    // leaving the loop early stops generation too
    const broken = generate(tiny.model, prompt, { temperature: 0, maxTokens: 400, stopTokens: [] });
    for await (const e of broken) if (e.type === 'token') break;
    const br = await broken.result;
    expect(br.finishReason).toBe('abort');
    expect(br.tokens.length).toBeLessThanOrEqual(2);
  });

  it('keeps the event loop free while generating', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    const r = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 150, stopTokens: [] }).result;
    const ms = performance.now() - t0;
    clearInterval(timer);
    expect(r.tokens).toHaveLength(150);
    console.log(`tiny-a generate: 150 tokens in ${ms.toFixed(0)} ms, ${ticks} timer ticks, ${r.timings.tokensPerSecond.toFixed(0)} tok/s`);
    expect(ticks).toBeGreaterThanOrEqual(Math.min(20, Math.floor(ms / 10)));
  });

  it('reuses a session: only the new tokens are prefilled, with the same result as from scratch', async () => {
    const session = tiny.model.createSession({ maxContext: 256 });
    const first = await generate(tiny.model, prompt, { temperature: 0, maxTokens: 6, stopTokens: [], session }).result;
    expect(session.length).toBe(prompt.length + 5); // the last sampled token is not fed back
    const longer = [...prompt, ...first.tokens, 5, 6, 7];
    const second = await generate(tiny.model, longer, { temperature: 0, maxTokens: 8, stopTokens: [], session }).result;
    expect(second.usage.cachedPromptTokens).toBe(prompt.length + 5);
    const fresh = await generate(tiny.model, longer, { temperature: 0, maxTokens: 8, stopTokens: [] }).result;
    expect(second.tokens).toEqual(fresh.tokens);
    // a shorter prompt sharing a prefix truncates the cache to it
    const third = await generate(tiny.model, prompt.slice(0, 30), { temperature: 0, maxTokens: 2, stopTokens: [], session }).result;
    expect(third.usage.cachedPromptTokens).toBe(29);
    expect(third.tokens).toEqual((await generate(tiny.model, prompt.slice(0, 30), { temperature: 0, maxTokens: 2, stopTokens: [] }).result).tokens);
    await session.dispose();
  });

  it('rejects input the model cannot take, before running anything', () => {
    expect(() => generate(tiny.model, [1, 2, 5000])).toThrow(/input\[2\] must be a token id \(an integer in \[0, 1024\)\), got 5000/);
    expect(() => generate(tiny.model, [])).toThrow(/empty/);
    expect(() => generate(tiny.model, prompt, { temperature: -1 })).toThrow(/temperature/);
    expect(() => generate(tiny.model, prompt, { reasoningEffort: 'high' })).toThrow(/conversation/);
    expect(() => generate(tiny.model, 'Hello world, how are you?')).toThrow(/outside this model's vocabulary of 1024/);
    expect(() => generate(tiny.model, { messages: [{ role: 'user', content: 'Hi' }] })).toThrow(/outside this model's vocabulary/);
  });
});

const FULL_VOCAB = FULL_VOCAB_TINY;

describe('generate and ChatSession on a random full-vocabulary model (CPU)', () => {
  let dir: string;
  let model: GptOssModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpt-oss-gen-'));
    await writeCheckpoint(dir, FULL_VOCAB);
    model = await loadModel(dir, { device: 'cpu' });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('takes text (encoded without special tokens)', async () => {
    const text = 'Hello <|start|> world';
    const r = await generate(model, text, { temperature: 0, maxTokens: 4 }).result;
    expect(r.usage.promptTokens).toBe(tokenizer.encode(text).length);
    expect(tokenizer.encode(text)).not.toContain(S.start);
    expect(r.tokens.length).toBeGreaterThan(0);
  });

  it('takes a conversation: renders it, parses the output as Harmony', async () => {
    const conv: Conversation = { messages: [{ role: 'user', content: 'What is 2+2?' }] };
    const stream = generate(model, conv, { temperature: 0, maxTokens: 8, reasoningEffort: 'high' });
    const events = await collect(stream);
    const r = await stream.result;
    expect(r.usage.promptTokens).toBe(renderConversation({ ...conv, system: { reasoningEffort: 'high' } }).length);
    expect(events.filter((e) => e.type === 'token')).toHaveLength(r.tokens.length);
    // deterministic at temperature 0
    expect((await generate(model, conv, { temperature: 0, maxTokens: 8, reasoningEffort: 'high' }).result).tokens).toEqual(r.tokens);
  });

  it('ChatSession: the second turn prefills only what is new', async () => {
    const chat = new ChatSession(model, { maxContext: 1024, defaults: { temperature: 0, maxTokens: 6 } });
    const turn1Prompt = renderConversation({ messages: [{ role: 'user', content: 'Hello there' }] });
    const r1 = await chat.send('Hello there');
    expect(r1.usage.cachedPromptTokens).toBe(0);
    expect(chat.session.length).toBe(turn1Prompt.length + r1.tokens.length - 1);
    expect(chat.cachedTokens.slice(0, turn1Prompt.length)).toEqual(turn1Prompt);
    expect(chat.messages[0]).toEqual({ role: 'user', content: 'Hello there' });
    expect(chat.messages.length).toBeGreaterThanOrEqual(2);
    expect(chat.messages.slice(1).every((m) => m.role === 'assistant')).toBe(true);

    const before = [...chat.cachedTokens];
    const turn2Prompt = renderConversation({ messages: [...chat.messages, { role: 'user', content: 'And again?' }] }, { dropAnalysis: 'completed-turns' });
    const r2 = await chat.send('And again?');
    expect(r2.usage.promptTokens).toBe(turn2Prompt.length);
    expect(r2.usage.cachedPromptTokens).toBe(commonPrefix(before, turn2Prompt));
    expect(r2.usage.cachedPromptTokens).toBeGreaterThanOrEqual(turn1Prompt.length);
    expect(chat.cachedTokens.slice(0, turn2Prompt.length)).toEqual(turn2Prompt);
    // the reused cache gives what a fresh run over the whole rendering gives
    const fresh = await generate(model, turn2Prompt, { temperature: 0, maxTokens: 6, parse: true }).result;
    expect(r2.tokens).toEqual(fresh.tokens);
    await chat.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// A scripted stand-in for the model: sample() returns the next scripted token, so the Harmony side
// of generate/ChatSession can be checked on known output.
// ---------------------------------------------------------------------------------------------

class ScriptedSession {
  readonly tokens: number[] = [];
  appended = 0;
  disposed = false;
  constructor(
    readonly maxContext: number,
    private readonly script: number[],
  ) {}
  get length(): number {
    return this.tokens.length;
  }
  async truncate(n: number): Promise<void> {
    this.tokens.length = Math.min(n, this.tokens.length);
  }
  async append(ids: ArrayLike<number>): Promise<void> {
    this.tokens.push(...Array.from(ids));
    this.appended += ids.length;
  }
  /** Each draw's uniform, whether it came with a mask, and whether a chunk (stepSampleMany) drew it. */
  readonly draws: { uniform: number; masked: boolean; chunk: boolean }[] = [];
  async sample(_o?: unknown, uniform = 0, bias?: { allow?: Uint32Array }, chunk = false): Promise<number> {
    const t = this.script.shift();
    if (t === undefined) throw new Error('script exhausted');
    this.draws.push({ uniform, masked: bias?.allow !== undefined, chunk });
    return t;
  }
  async stepSample(token: number, o?: unknown, uniform = 0, bias?: { allow?: Uint32Array }, chunk = false): Promise<number> {
    await this.append([token]);
    return this.sample(o, uniform, bias, chunk);
  }
  // As the native call: uniforms.length stepSample()s, stopping after a drawn id in stopIds.
  async stepSampleMany(token: number, o: unknown, uniforms: ArrayLike<number>, stopIds: ArrayLike<number> = []): Promise<Int32Array> {
    const out: number[] = [];
    for (let i = 0; i < uniforms.length; i++) {
      const id = await this.stepSample(i === 0 ? token : out[i - 1], o, uniforms[i], undefined, true);
      out.push(id);
      if (Array.from(stopIds).includes(id)) break;
    }
    return Int32Array.from(out);
  }
  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

function scriptedModel(script: number[]): { model: GptOssModel; sessions: ScriptedSession[] } {
  const sessions: ScriptedSession[] = [];
  const model = {
    config: { ...FULL_VOCAB, maxPositionEmbeddings: 131072, eosTokenIds: [] },
    createSession({ maxContext = 4096 }: { maxContext?: number } = {}): Session {
      const s = new ScriptedSession(maxContext, script);
      sessions.push(s);
      return s as unknown as Session;
    },
  };
  return { model: model as unknown as GptOssModel, sessions };
}

const enc = (s: string): number[] => tokenizer.encode(s);
const reply = assistantReply;
const ANSWER = [
  ...reply({ role: 'assistant', channel: 'analysis', content: 'Think.' }),
  S.start, ...enc('assistant'),
  ...reply({ role: 'assistant', channel: 'final', content: 'Hello!' }, S.return),
];
const TOOL_CALL = reply({ role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: 'json', content: '{"city":"Paris"}' });
const AFTER_TOOL = reply({ role: 'assistant', channel: 'final', content: 'It is 20 C.' }, S.return);

describe('decode chunks (scripted model: 16 steps a native call off the CPU)', () => {
  it('a strict tool call: chunks run until its header\'s <|message|>, then one masked draw a call; each draw keeps its uniform of the stream', async () => {
    const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const think = reply({ role: 'assistant', channel: 'analysis', content: 'The user wants the weather in Paris, so I call the tool.' });
    const call = reply({ role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}' }, S.call);
    const script = [...think, S.start, ...enc('assistant'), ...call];
    const { model, sessions } = scriptedModel([...script]);
    const r = await generate(model, enc('Weather?'), { parse: true, maxTokens: 200, seed: 42, strictTools: { get_weather: weather } }).result;
    expect(r.finishReason).toBe('tool-call');
    expect(r.tokens).toEqual(script);
    expect(r.toolCalls[0]).toMatchObject({ name: 'get_weather', arguments: { city: 'Paris' } });
    const draws = sessions[0]!.draws;
    expect(draws).toHaveLength(script.length);
    const rng = createRng(42);
    draws.forEach((d, k) => expect(d.uniform, `draw ${k}`).toBe(rng.nextUniform()));
    // the call's arguments (after its <|message|>) are drawn one a call with a mask; everything before, in chunks
    const open = script.lastIndexOf(S.message) + 1;
    draws.forEach((d, k) => expect([k, d.masked, d.chunk]).toEqual([k, k >= open, k > 0 && k < open]));
  });

  it('an abort inside a chunk keeps the tokens emitted so far and cuts the session back to them', async () => {
    const script = Array.from({ length: 40 }, (_, i) => 1000 + i);
    const { model, sessions } = scriptedModel([...script]);
    const prompt = enc('Hello there');
    const controller = new AbortController();
    const stream = generate(model, prompt, { maxTokens: 40, stopTokens: [], signal: controller.signal });
    let seen = 0;
    for await (const e of stream) if (e.type === 'token' && ++seen === 5) controller.abort();
    const r = await stream.result;
    expect(r.finishReason).toBe('abort');
    expect(r.tokens).toEqual(script.slice(0, 5)); // one from sample(), four of the first chunk's 16
    expect(sessions[0].tokens).toEqual([...prompt, ...script.slice(0, 4)]); // every token but the last was fed
  });

  it('a stop id inside a chunk ends generation there', async () => {
    const script = Array.from({ length: 40 }, (_, i) => 2000 + i);
    const { model, sessions } = scriptedModel([...script]);
    const prompt = enc('Hi');
    const r = await generate(model, prompt, { maxTokens: 40, stopTokens: [2009] }).result;
    expect(r.finishReason).toBe('stop');
    expect(r.tokens).toEqual(script.slice(0, 10));
    expect(sessions[0].tokens).toEqual([...prompt, ...script.slice(0, 9)]);
  });
});

describe('Harmony output (scripted model)', () => {
  it('maxTokens inside a message header is a length stop, not an error (issue 16)', async () => {
    // the model writes `<|channel|>analysis`... and maxTokens ends it before <|message|>
    const { model } = scriptedModel([S.channel, ...enc('analysis'), S.message, ...enc('x')]);
    const stream = generate(model, { messages: [{ role: 'user', content: 'Hi' }] }, { maxTokens: 2 });
    const events = await collect(stream);
    const r = await stream.result;
    expect(r.finishReason).toBe('length');
    expect(r.error).toBeUndefined();
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('<|channel|> spelled with ordinary tokens in a header is text, not the marker (issue 16)', async () => {
    const spelled = enc('<|channel|>final');
    expect(spelled).not.toContain(S.channel);
    const { model } = scriptedModel([...spelled, S.message, ...enc('hidden'), S.end]);
    const r = await generate(model, { messages: [{ role: 'user', content: 'Hi' }] }, { maxTokens: 40 }).result;
    expect(r.messages[0]?.channel).toBeUndefined();
    expect(r.channels.final).toBe('');
    // the real token still is the marker
    const { model: m2 } = scriptedModel([S.channel, ...enc('final'), S.message, ...enc('shown'), S.return]);
    const r2 = await generate(m2, { messages: [{ role: 'user', content: 'Hi' }] }, { maxTokens: 40 }).result;
    expect(r2.channels.final).toBe('shown');
  });

  it('splits channels, emits parser events, stops on <|return|>', async () => {
    const { model, sessions } = scriptedModel([...ANSWER]);
    const stream = generate(model, { messages: [{ role: 'user', content: 'Hi' }] });
    const events = await collect(stream);
    const r = await stream.result;
    expect(r.finishReason).toBe('stop');
    expect(r.stopToken).toBe(S.return);
    expect(r.tokens).toEqual(ANSWER);
    expect(r.channels).toEqual({ analysis: 'Think.', commentary: '', final: 'Hello!' });
    expect(r.messages.map((m) => [m.channel, m.content, m.stop])).toEqual([
      ['analysis', 'Think.', 'end'],
      ['final', 'Hello!', 'return'],
    ]);
    const kinds = events.filter((e) => e.type !== 'token' && e.type !== 'text').map((e) => e.type);
    expect(kinds).toEqual(['message-start', 'message-end', 'message-start', 'message-end', 'return']);
    expect(events.filter((e) => e.type === 'text' && e.channel === 'final').map((e) => (e as { delta: string }).delta).join('')).toBe('Hello!');
    expect(sessions[0]!.disposed).toBe(true);
  });

  it('renders reasoningEffort into the system message', async () => {
    const { model, sessions } = scriptedModel([...ANSWER]);
    const conv: Conversation = { messages: [{ role: 'user', content: 'Hi' }] };
    await generate(model, conv, { reasoningEffort: 'low' }).result;
    const fed = sessions[0]!.tokens;
    const expected = renderConversation({ ...conv, system: { reasoningEffort: 'low' } });
    expect(fed.slice(0, expected.length)).toEqual(expected);
    expect(tokenizer.decode(expected)).toContain('Reasoning: low');
  });

  it('ChatSession: tool call, tool result, answer; each turn prefills only what is new', async () => {
    const { model, sessions } = scriptedModel([...ANSWER, ...TOOL_CALL, ...AFTER_TOOL]);
    const tools = { tools: [{ name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }] };
    const chat = new ChatSession(model, { developer: tools });
    const session = sessions[0]!;

    const r1 = await chat.send('Hi');
    expect(r1.channels.final).toBe('Hello!');
    expect(chat.messages).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', channel: 'analysis', content: 'Think.' },
      { role: 'assistant', channel: 'final', content: 'Hello!' },
    ]);

    const fedBefore = session.appended;
    const cacheBefore = [...session.tokens];
    const r2 = await chat.send('Weather in Paris?');
    expect(r2.finishReason).toBe('tool-call');
    expect(r2.toolCalls).toEqual([
      { recipient: 'functions.get_weather', name: 'get_weather', arguments: { city: 'Paris' }, raw: '{"city":"Paris"}', channel: 'commentary', contentType: 'json' },
    ]);
    const prompt2 = renderConversation({ developer: tools, messages: chat.messages.slice(0, 4) }, { dropAnalysis: 'completed-turns' });
    const reused = commonPrefix(cacheBefore, prompt2);
    expect(r2.usage.cachedPromptTokens).toBe(reused);
    // the analysis of turn 1 is dropped from history (Harmony), so reuse stops in its header:
    // after `<|start|>assistant<|channel|>`, where 'analysis' and 'final' differ
    expect(reused).toBe(renderConversation({ developer: tools, messages: [{ role: 'user', content: 'Hi' }] }).length + 1);
    expect(session.appended - fedBefore).toBe(prompt2.length - reused + r2.tokens.length - 1);
    expect(chat.messages[4]).toEqual({
      role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}',
    });

    const cacheBeforeTool = [...session.tokens];
    const r3 = await chat.sendToolResult('get_weather', { temperatureC: 20 });
    expect(r3.channels.final).toBe('It is 20 C.');
    expect(chat.messages[5]).toEqual({ role: 'tool', name: 'functions.get_weather', content: '{"temperatureC":20}' });
    const prompt3 = renderConversation({ developer: tools, messages: chat.messages.slice(0, 6) }, { dropAnalysis: 'completed-turns' });
    expect(session.tokens.slice(0, prompt3.length)).toEqual(prompt3);
    // Everything up to the tool call's last argument token was reused (the turn-1 analysis stays
    // dropped: 'completed-turns'); <|call|> and the tool message are new
    expect(r3.usage.cachedPromptTokens).toBe(cacheBeforeTool.length);
    expect(r3.usage.promptTokens - r3.usage.cachedPromptTokens).toBeLessThan(30);
    expect(chat.messages.at(-1)).toEqual({ role: 'assistant', channel: 'final', content: 'It is 20 C.' });
    await chat.dispose();
    expect(session.disposed).toBe(true);
  });
});
