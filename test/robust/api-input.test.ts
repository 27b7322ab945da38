// Bad input at the API boundary (issue 16, findings 4, 5, 8): token ids are checked, never coerced;
// a logit row with no distribution is the same typed error on every sampler; misused arguments
// name themselves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, sampleFromLogits, samplingDistribution, Tensor, kernels, type GptOssModel } from '../../lib/index.js';
import { fixtureDir } from '../helpers/fixtures.js';

let model: GptOssModel;
beforeAll(async () => {
  model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
});
afterAll(async () => {
  await model?.dispose();
});

const V = 1024; // tiny-a's vocabulary

describe('token ids are validated, not coerced', () => {
  const bad: [string, unknown, RegExp, ErrorConstructor][] = [
    ['2**32+5', [1, 2 ** 32 + 5], /tokens\[1\] must be a token id \(an integer in \[0, 1024\)\), got 4294967301/, RangeError],
    ['1.5', [1.5], /tokens\[0\] .* got 1\.5/, RangeError],
    ['NaN', [3, NaN], /tokens\[1\] .* got NaN/, RangeError],
    ['Infinity', [Infinity], /tokens\[0\] .* got Infinity/, RangeError],
    ['-1', [-1], /tokens\[0\] .* got -1/, RangeError],
    ['vocab', [V], /tokens\[0\] .* got 1024/, RangeError],
    ["'abc'", ['abc'], /tokens\[0\] .* got "abc"/, TypeError],
    ['{}', [{}], /tokens\[0\] .* got an object/, TypeError],
    ['a hole', [1, , 2], /tokens\[1\] .* got undefined/, TypeError], // eslint-disable-line no-sparse-arrays
    ['a string', 'abc', /argument 'tokens' must be an array of token ids, got a string/, TypeError],
    ['null', null, /argument 'tokens' must be an array of token ids, got null/, TypeError],
    ['a number', 5, /argument 'tokens' must be an array of token ids, got 5/, TypeError],
    ['Float64Array', Float64Array.of(0.5), /tokens\[0\] .* got 0\.5/, RangeError],
  ];
  it.each(bad)('forward(%s) is rejected with the position', async (_name, tokens, message, type) => {
    const e = await model.forward(tokens as number[]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(type);
    expect((e as Error).message).toMatch(/^forward: /);
    expect((e as Error).message).toMatch(message);
  });

  it('every Session entry point rejects the same way', async () => {
    const s = model.createSession({ maxContext: 64 });
    try {
      await expect(s.prefill([2 ** 32 + 7])).rejects.toThrow(/^Session\.prefill: tokens\[0\] must be a token id/);
      await expect(s.prefillAll([0, 1.5])).rejects.toThrow(/^Session\.prefillAll: tokens\[1\]/);
      await expect(s.append([0, 'x' as unknown as number])).rejects.toThrow(TypeError);
      await expect(s.step(2 ** 32 + 7)).rejects.toThrow(/^Session\.step: argument 'token' must be a token id .* got 4294967303/);
      await expect(s.step(NaN)).rejects.toThrow(RangeError);
      await expect(s.stepSample(-1, {}, 0.5)).rejects.toThrow(/^Session\.stepSample: argument 'token'/);
      await expect(s.stepSampleMany(1.5, {}, [0.5])).rejects.toThrow(/^Session\.stepSampleMany: argument 'token'/);
      await expect(s.stepSampleMany(1, {}, [0.5], [NaN])).rejects.toThrow(/stopIds\[0\]/);
      expect(s.length).toBe(0); // nothing ran
      // and a good call still works afterwards
      expect((await s.prefill([1, 2])).length).toBe(V);
    } finally {
      await s.dispose();
    }
  });

  it('forward([5]) differs from forward([2**32+5]) because the second is an error, not token 5', async () => {
    const ok = await model.forward([5]);
    expect(ok.length).toBe(V);
    await expect(model.forward([2 ** 32 + 5])).rejects.toThrow(RangeError);
  });

  it('generate checks input ids, stopTokens, signal, session and options', () => {
    expect(() => model.generate([1, 2 ** 32])).toThrow(/^generate: input\[1\] must be a token id/);
    expect(() => model.generate([1], { stopTokens: 5 as unknown as number[] })).toThrow(/argument 'stopTokens' must be an array/);
    expect(() => model.generate([1], { stopTokens: [NaN, -1, 'x' as unknown as number] })).toThrow(/stopTokens\[0\]/);
    expect(() => model.generate([1], { signal: {} as AbortSignal })).toThrow(/options\.signal must be an AbortSignal/);
    expect(() => model.generate([1], { session: {} as never })).toThrow(/options\.session must be a Session/);
    expect(() => model.generate([1], null as never)).toThrow(/argument 'options' must be an object, got null/);
  });

  it('a disposed session says so', async () => {
    const s = model.createSession({ maxContext: 8 });
    await s.dispose();
    expect(s.disposed).toBe(true);
    await expect(s.prefill([1])).rejects.toThrow('Session.prefill: the session was disposed');
    await expect(s.step(1)).rejects.toThrow('Session.step: the session was disposed');
    await expect(s.sample({}, 0.5)).rejects.toThrow('Session.sample: the session was disposed');
    expect(() => model.generate([1], { session: s })).toThrow('generate: options.session was disposed');
  });

  it('createSession(null) and a non-integer maxContext name the argument', () => {
    expect(() => model.createSession(null as never)).toThrow(/createSession: argument 'options' must be an object, got null/);
    expect(() => model.createSession({ maxContext: 1.5 })).toThrow(/createSession: options\.maxContext must be an integer >= 1, got 1\.5/);
  });

  it('topK beyond int32 means "keep all", as it does for any topK >= vocabulary', async () => {
    const s = model.createSession({ maxContext: 8 });
    try {
      await s.prefill([1, 2, 3]);
      const big = await s.sample({ temperature: 1, topK: 2 ** 40 }, 0.37);
      const off = await s.sample({ temperature: 1, topK: 0 }, 0.37);
      expect(big).toBe(off);
    } finally {
      await s.dispose();
    }
  });
});

describe('a logit row with no distribution: one rule on every sampler', () => {
  const rows: [string, number[], object, RegExp][] = [
    ['NaN', [NaN, 1, 2, 3], { temperature: 1 }, /logits\[0\] is NaN or \+Infinity/],
    ['NaN, greedy', [0, 1, NaN, 3], { temperature: 0 }, /logits\[2\] is NaN or \+Infinity/],
    ['all -Infinity', [-Infinity, -Infinity, -Infinity], { temperature: 1 }, /every logit is -Infinity/],
    ['all -Infinity, greedy', [-Infinity, -Infinity], { temperature: 0 }, /every logit is -Infinity/],
    ['+Infinity with minP', [0, Infinity, 2, 3], { temperature: 1, minP: 0.5 }, /logits\[1\] is NaN or \+Infinity/],
    ['+Infinity with topP', [0, 1, 2, Infinity], { temperature: 0.7, topP: 0.9 }, /logits\[3\] is NaN or \+Infinity/],
    ['+Infinity with topK', [Infinity, 1], { temperature: 1, topK: 1 }, /logits\[0\] is NaN or \+Infinity/],
  ];
  it.each(rows)('%s', (_name, row, options, message) => {
    const t = Tensor.fromF32(row, [1, row.length]);
    try {
      for (const [name, fn] of [
        ['ops.sample', () => kernels.ops.sample(t, options, 0.5)],
        ['ops.reference.sample', () => kernels.reference.sample(t, options, 0.5)],
        ['sampleFromLogits', () => sampleFromLogits(row, options, 0.5)],
        ['samplingDistribution', () => samplingDistribution(row, options)],
      ] as const) {
        let err: unknown;
        try {
          fn();
        } catch (e) {
          err = e;
        }
        expect(err, name).toBeInstanceOf(RangeError);
        expect((err as Error).message, name).toMatch(message);
      }
    } finally {
      t.dispose();
    }
  });

  it('a row with -Infinity entries but one finite logit still draws that token', () => {
    const row = [-Infinity, -Infinity, 4, -Infinity];
    const t = Tensor.fromF32(row, [1, 4]);
    try {
      expect(kernels.ops.sample(t, { temperature: 1, minP: 0.5 }, 0.9)).toBe(2);
      expect(sampleFromLogits(row, { temperature: 1, minP: 0.5 }, 0.9)).toBe(2);
    } finally {
      t.dispose();
    }
  });
});

describe('found again as a hostile user (issue 16, finding 8 and around it)', () => {
  it('generate with the default stops runs on a model whose vocabulary lacks the Harmony ids', async () => {
    // the defaults (<|return|>, <|call|>, ... = 200002+) used to reach stepSampleMany and fail every
    // decode on tiny-a (vocab 1024): "stopIds[0] must be a token id ... got 200002"
    const { generate } = await import('../../lib/index.js');
    const r = await generate(model, [1, 2, 3], { maxTokens: 3, temperature: 0 }).result;
    expect(r.error).toBeUndefined();
    expect(r.finishReason).toBe('length');
    expect(r.tokens).toHaveLength(3);
  });

  it('a message without content, with a bad role, or not an object names itself', async () => {
    const { renderConversation } = await import('../../lib/harmony/index.js');
    const render = (messages: unknown) => () => renderConversation({ messages } as never);
    expect(render([{ role: 'user' }])).toThrow(new TypeError('renderConversation: messages[0].content must be a string, got undefined'));
    expect(render([{ role: 'user', content: 'a' }, { role: 'robot', content: 'b' }])).toThrow(/^renderConversation: messages\[1\]\.role must be one of system, developer, user, assistant, tool, got "robot"$/);
    expect(render([null])).toThrow('renderConversation: messages[0] must be a message object {role, content}, got null');
  });

  it('a circular or absurdly deep tool schema is a RangeError naming the tool, not a stack overflow', async () => {
    const { renderConversation } = await import('../../lib/harmony/index.js');
    const loop: Record<string, unknown> = { type: 'object', properties: {} };
    (loop.properties as Record<string, unknown>).self = loop;
    const tools = (parameters: unknown) => ({ developer: { tools: [{ name: 'f', parameters }] }, messages: [{ role: 'user' as const, content: 'x' }] });
    expect(() => renderConversation(tools(loop) as never)).toThrow(new RangeError("tool 'functions.f': parameters: the schema is circular (an object contains itself); JSON schemas here must be trees"));
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 5000; i++) deep = { type: 'object', properties: { a: deep } };
    expect(() => renderConversation(tools(deep) as never)).toThrow(/^tool 'functions\.f': parameters: the schema nests deeper than 64 levels$/);
    // the same sub-schema used twice is no cycle
    const point = { type: 'number' };
    expect(() => renderConversation(tools({ type: 'object', properties: { x: point, y: point } }) as never)).not.toThrow();
  });

  it('ChatSession.send and tokenizer.encode name their arguments', async () => {
    const { ChatSession, tokenizer } = await import('../../lib/index.js');
    const chat = new ChatSession(model);
    expect(() => chat.stream(5 as never)).toThrow("ChatSession.send: argument 'input' must be a string, a message or an array of messages, got number");
    await chat.dispose();
    expect(() => tokenizer.encode('x', { allowSpecial: 5 as never })).toThrow(/^tokenizer\.encode: options\.allowSpecial must be true, false, 'all' or an array of special-token names, got 5$/);
    await expect(tokenizer.encodeAsync('x'.repeat(10000), { allowSpecial: 5 as never })).rejects.toThrow(TypeError);
  });
});
