// Encoding never stalls the event loop (issue 16, finding 3): tokenizer.encodeAsync hands long texts
// to a worker thread, and generate(), ChatSession, the engine and the server's prompt builder encode
// long prompts that way. The ids must be exactly gpt-tokenizer's o200k_harmony ones; the stall is
// measured with perf_hooks' event-loop delay monitor while the work runs.
import { encode as upstream } from 'gpt-tokenizer/encoding/o200k_harmony';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizer, INLINE_CHARS } from '../../lib/tokenizer.js';
import { loadModel, generate, ChatSession, type GptOssModel } from '../../lib/index.js';
import { renderConversation, renderConversationAsync, type Conversation } from '../../lib/harmony/index.js';
import { buildPrompt } from '../../lib/server/conversation.js';
import { writeCheckpoint, FULL_VOCAB_TINY } from '../helpers/checkpoint.js';
import { rng } from '../helpers/rng.js';

const STALL_MS = 50;
const flat = (s: string): string => (s.charCodeAt(s.length >> 1), s); // flatten a repeat() rope up front

/** The longest event-loop delay while `work` runs (ms). */
async function maxStall(work: () => Promise<unknown>): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 2 });
  h.enable();
  try {
    // the monitor measures from one tick of its timer to the next: let it tick before the work starts
    await new Promise((resolve) => setTimeout(resolve, 20));
    await work();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the monitor records a delay when its timer fires
  } finally {
    h.disable();
  }
  return h.max / 1e6;
}

const yardstick = flat('\ud800'.repeat(5e4)); // ~40 ms of CPU to encode on this box when idle
tokenizer.encode(yardstick); // builds the rank index here, outside any measurement

/**
 * The longest event-loop delay while `work` runs, as a fraction of the bound: < 1 passes. The bound
 * is 50 ms, or on a loaded machine (the tests share two cores with other processes) the delay of
 * encoding `yardstick` synchronously right before, whichever is larger: descheduling stretches both
 * alike, while encoding the work's own texts on the event loop (at least 300,000 characters here,
 * 6x the yardstick) would still exceed it several times over. A stall the code causes comes back
 * on every run, a scheduling hiccup does not: the best of up to three runs.
 */
async function stallOf(work: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let k = 0; k < 3 && best >= 1; k++) {
    const bound = Math.max(STALL_MS, await maxStall(async () => tokenizer.encode(yardstick)));
    best = Math.min(best, (await maxStall(work)) / bound);
  }
  return best;
}


describe('tokenizer.encodeAsync', () => {
  const r = rng(16, 'tokenizer-async');
  const pick = (alphabet: string[] | string): string => alphabet[Math.floor(r.nextFloat() * alphabet.length)]!;
  const atoms = ['a', 'Z', ' ', '  ', '\n', '\t', '1', '.', '!', 'é', '漢', 'мир', 'مرحبا', '😀', '👩‍👩‍👧', '\ud800', '\udc00', "'s", '<|start|>', '<|x|>', ' the', 'ing'];
  const randomText = (n: number): string => {
    let t = '';
    while (t.length < n) t += r.nextFloat() < 0.02 ? pick(atoms).repeat(1 + Math.floor(r.nextFloat() * 250)) : pick(atoms);
    return t;
  };

  it('gives gpt-tokenizer ids for random and adversarial texts, inline and on the worker', async () => {
    const texts = [
      '', 'Hello, world!', ' '.repeat(INLINE_CHARS + 1), 'a'.repeat(9000), '😀'.repeat(5000), '\ud800'.repeat(9000),
      '\udc00\ud800'.repeat(4000), 'x' + ' '.repeat(3000) + 'y' + '\n'.repeat(3000) + 'z', '<|start|>'.repeat(1500),
      ...Array.from({ length: 16 }, (_, i) => randomText(i % 3 === 0 ? 300 : 9000 + i * 300)),
    ];
    const ours = await Promise.all(texts.map((t) => tokenizer.encodeAsync(t)));
    texts.forEach((t, i) => expect(ours[i], `text ${i} (${t.length} chars)`).toEqual(upstream(t, { disallowedSpecial: new Set() })));
  });

  it('takes the same options as encode (special tokens) and the same argument errors', async () => {
    const t = 'say <|start|>hi<|end|> ' + 'word '.repeat(3000);
    expect(await tokenizer.encodeAsync(t, { allowSpecial: true })).toEqual(tokenizer.encode(t, { allowSpecial: true }));
    expect(await tokenizer.encodeAsync(t, { allowSpecial: ['<|end|>'] })).toEqual(tokenizer.encode(t, { allowSpecial: ['<|end|>'] }));
    await expect(tokenizer.encodeAsync(t, { allowSpecial: ['<|nope|>'] })).rejects.toThrow('Unknown special token: <|nope|>');
    await expect(tokenizer.encodeAsync(5 as unknown as string)).rejects.toThrow(TypeError);
    expect(() => tokenizer.encode(5 as unknown as string)).toThrow("tokenizer.encode: argument 'text' must be a string, got number");
    expect(() => tokenizer.encode(null as unknown as string)).toThrow("argument 'text' must be a string, got null");
  });

  it('1 MB of lone surrogates, emoji, spaces, one word, mixed scripts: the loop never waits 50 ms', async () => {
    const inputs = [
      flat('\ud800'.repeat(1e6)),
      flat('😀'.repeat(5e5)),
      flat(' '.repeat(1e6)),
      flat('a'.repeat(1e6)),
      flat('Hello мир 世界 مرحبا 123 😀\n'.repeat(40000)),
    ];
    const lengths: number[] = [];
    const stall = await stallOf(async () => {
      lengths.length = 0;
      for (const t of inputs) lengths.push((await tokenizer.encodeAsync(t)).length);
    });
    expect(lengths).toEqual([125000, 500000, 7813, 125000, 360000]);
    expect(stall).toBeLessThan(1);
    // the monitor does see a stall: the synchronous encode of a fifth of the first input
    const part = inputs[0]!.slice(0, 2e5);
    expect(await maxStall(async () => tokenizer.encode(part))).toBeGreaterThan(STALL_MS);
  });

  it('renderConversationAsync equals renderConversation; buildPrompt (the server) does not stall', async () => {
    const conv: Conversation = {
      developer: { instructions: 'Be brief. ' + 'rule '.repeat(3000) },
      messages: [
        { role: 'user', content: randomText(20000) },
        { role: 'assistant', channel: 'final', content: ' '.repeat(12000) },
        { role: 'user', content: 'and now?' },
      ],
    };
    expect(await renderConversationAsync(conv)).toEqual(renderConversation(conv));
    const big = flat('\ud800'.repeat(1e6));
    const stall = await stallOf(async () => {
      const req = await buildPrompt([], [], [{ role: 'user', content: big }], undefined, 'auto', 'tool_choice');
      expect(req.prompt.length).toBeGreaterThan(125000);
    });
    expect(stall).toBeLessThan(1);
    // many messages, each short enough to encode inline, add up: they go to the worker too
    const many = Array.from({ length: 40 }, (_, i) => ({ role: 'user' as const, content: flat(String.fromCharCode(0xd800 + i).repeat(INLINE_CHARS - 1)) }));
    expect(await maxStall(async () => tokenizer.encode(many.map((m) => m.content).join('')))).toBeGreaterThan(STALL_MS);
    const manyStall = await stallOf(async () => {
      const req = await buildPrompt([], [], many, undefined, 'auto', 'tool_choice');
      expect(req.prompt.length).toBeGreaterThan(40 * 1000);
    });
    expect(manyStall).toBeLessThan(1);
  });
});

describe('the runtime encodes long prompts off the event loop', () => {
  let dir: string;
  let model: GptOssModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-tok-async-'));
    await writeCheckpoint(dir, { ...FULL_VOCAB_TINY, maxPositionEmbeddings: 4096 });
    model = await loadModel(dir, { device: 'cpu' });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const huge = flat('\ud800'.repeat(3e5)); // 37,500 tokens: past this model's 4096 positions

  it('generate(): a 300,000-character prompt ends in a typed error without stalling; a long one that fits runs', async () => {
    let result!: Awaited<ReturnType<typeof generate>['result']>;
    const stall = await stallOf(async () => {
      result = await generate(model, huge, { maxTokens: 1, temperature: 0 }).result;
    });
    expect(stall).toBeLessThan(1);
    expect(result.finishReason).toBe('error');
    expect(result.error).toBeInstanceOf(RangeError);
    expect(result.error!.message).toBe('generate: prompt of 37500 tokens exceeds max_position_embeddings 4096');

    const text = 'the same words again and again, '.repeat(400); // 12,800 chars: the worker path
    const long = await generate(model, text, { maxTokens: 2, temperature: 0 }).result;
    expect(long.finishReason).toBe('length');
    expect(long.usage.promptTokens).toBe(tokenizer.encode(text).length);
    const direct = await generate(model, tokenizer.encode(text), { maxTokens: 2, temperature: 0 }).result;
    expect(long.tokens).toEqual(direct.tokens);
    // bad options still throw at once, before any encoding
    expect(() => generate(model, huge, { temperature: -1 })).toThrow(RangeError);
  });

  it('ChatSession: a 300,000-character message ends the turn with ContextLengthError, no stall; the chat goes on', async () => {
    const chat = new ChatSession(model, { maxContext: 2048 });
    let result!: Awaited<ReturnType<ChatSession['send']>>;
    const stall = await stallOf(async () => {
      result = await chat.send(huge, { maxTokens: 1, temperature: 0 });
    });
    expect(stall).toBeLessThan(1);
    expect(result.finishReason).toBe('error');
    expect(result.error!.name).toBe('ContextLengthError');
    expect(chat.messages).toEqual([]);
    const next = await chat.send('hello '.repeat(1500), { maxTokens: 1, temperature: 0 });
    expect(next.error).toBeUndefined();
    expect(next.finishReason).toBe('length');
    await chat.dispose();
  });

  it('engine.generate: a 300,000-character prompt ends with the typed error, no stall', async () => {
    const engine = model.createEngine({ maxSequences: 2, maxBatchTokens: 64, maxContext: 1024 });
    let result!: Awaited<ReturnType<typeof engine.generate>['result']>;
    const stall = await stallOf(async () => {
      result = await engine.generate(huge, { maxTokens: 1, temperature: 0 }).result;
    });
    expect(stall).toBeLessThan(1);
    expect(result.finishReason).toBe('error');
    expect(result.error).toBeInstanceOf(RangeError);
    expect(result.error!.message).toBe('engine.generate: prompt of 37500 tokens exceeds max_position_embeddings 4096');
    await engine.close();
  });
});
