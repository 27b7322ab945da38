// ChatSession's context policy: a full context is finishReason 'context' (not 'length'); later turns
// drop the oldest turns (system and developer messages stay) instead of throwing, and re-prefill only
// what follows the unchanged system/developer prefix. A random full-vocabulary model on the CPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyntheticModel, ChatSession, ContextLengthError, type GptOssModel, type Message } from '../lib/index.js';
import { renderConversation } from '../lib/harmony/index.js';
import { FULL_VOCAB_TINY } from './helpers/checkpoint.js';

describe('ChatSession context policy', () => {
  let model: GptOssModel;
  beforeAll(async () => {
    model = await createSyntheticModel(FULL_VOCAB_TINY, { device: 'cpu' });
  }, 60_000);
  afterAll(async () => {
    await model?.dispose();
  });

  const developer = { instructions: 'Be brief.' };
  const prefix = renderConversation({ developer, messages: [] }, { appendStart: false }).length; // system + developer

  it("a reply that fills the context ends with 'context'; the next send drops the oldest turn and goes on", async () => {
    const first = renderConversation({ developer, messages: [{ role: 'user', content: 'Tell me a long story.' }] }).length;
    const maxContext = first + 40;
    const trimmed: Message[][] = [];
    const chat = new ChatSession(model, { developer, maxContext, contextReserve: 10, defaults: { temperature: 1, seed: 3, maxTokens: 500, stopTokens: [] }, onContextTrim: (d) => trimmed.push(d) });
    const r1 = await chat.send('Tell me a long story.');
    expect(r1.finishReason).toBe('context');
    expect(r1.usage.promptTokens + r1.tokens.length).toBe(maxContext);
    const r2 = await chat.send('And another one.'); // threw RangeError before: the history no longer fits
    expect(trimmed).toHaveLength(1);
    expect(trimmed[0]![0]).toEqual({ role: 'user', content: 'Tell me a long story.' });
    expect(chat.droppedMessages).toBe(trimmed[0]!.length);
    expect(chat.messages[0]).toEqual({ role: 'user', content: 'And another one.' });
    expect(r2.finishReason).toBe('context');
    // only what follows the system and developer messages was prefilled again
    expect(r2.usage.cachedPromptTokens).toBeGreaterThanOrEqual(prefix);
    expect(r2.usage.promptTokens - r2.usage.cachedPromptTokens).toBeLessThan(20);
    await chat.dispose();
  });

  it('many turns in a small context keep working; the rendered history always fits', async () => {
    const maxContext = prefix + 160;
    const chat = new ChatSession(model, { developer, maxContext, defaults: { temperature: 1, maxTokens: 24, stopTokens: [] } });
    for (let i = 0; i < 8; i++) {
      const r = await chat.send(`Message ${i}: ${'lorem ipsum '.repeat(6)}`);
      expect(['length', 'context']).toContain(r.finishReason);
      expect(r.usage.promptTokens).toBeLessThanOrEqual(maxContext);
    }
    expect(chat.droppedMessages).toBeGreaterThan(0);
    expect(chat.messages[0]!.role).toBe('user');
    await chat.dispose();
  });

  it("contextPolicy 'error' throws ContextLengthError and leaves the history as it was", async () => {
    const maxContext = prefix + 40;
    const chat = new ChatSession(model, { developer, maxContext, contextPolicy: 'error', defaults: { temperature: 1, maxTokens: 8, stopTokens: [] } });
    await chat.send('Hi');
    const before = [...chat.messages];
    expect(() => chat.stream('word '.repeat(60))).toThrow(ContextLengthError);
    expect(() => chat.stream('word '.repeat(60))).toThrow(new RegExp(`maximum context length is ${maxContext} tokens`));
    expect(chat.messages).toEqual(before);
    expect((await chat.send('Ok')).tokens.length).toBeGreaterThan(0); // still usable
    await chat.dispose();
  });
});
