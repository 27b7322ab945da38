import { describe, expect, test } from 'vitest';
import { tokenizer } from '../../lib/tokenizer.js';
import {
  createHarmonyParser,
  HarmonyStreamParser,
  parseMessages,
  renderConversation,
  renderSystemContent,
  renderDeveloperContent,
  type Conversation,
  type HarmonyEvent,
} from '../../lib/harmony/index.js';

const withSpecials = (s: string) => tokenizer.encode(s, { allowSpecial: 'all' });

function run(tokens: number[], opts?: ConstructorParameters<typeof HarmonyStreamParser>[0]): HarmonyEvent[] {
  const p = createHarmonyParser(opts);
  const ev: HarmonyEvent[] = [];
  for (const t of tokens) ev.push(...p.push(t));
  ev.push(...p.end());
  return ev;
}

/** Events with consecutive text deltas merged (delta boundaries depend on tokenization). */
function merged(ev: HarmonyEvent[]): HarmonyEvent[] {
  const out: HarmonyEvent[] = [];
  for (const e of ev) {
    const last = out[out.length - 1];
    if (e.type === 'text' && last && last.type === 'text') out[out.length - 1] = { ...last, delta: last.delta + e.delta };
    else out.push({ ...e });
  }
  return out;
}

// Completion from the openai/harmony docs (after a rendered `<|start|>assistant`).
const DOC_COMPLETION = [
  200005, 35644, 200008, 1844, 31064, 25, 392, 4827, 382, 220, 17, 659, 220, 17, 16842, 12295, 81645, 13, 51441,
  6052, 13, 200007, 200006, 173781, 200005, 17196, 200008, 17, 659, 220, 17, 314, 220, 19, 13, 200002,
];

describe('streaming parser', () => {
  test('docs completion: analysis then final with <|return|>', () => {
    const ev = run(DOC_COMPLETION, { startInHeader: true, role: 'assistant' });
    const cot = 'User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.';
    expect(merged(ev)).toEqual([
      { type: 'message-start', role: 'assistant', channel: 'analysis' },
      { type: 'text', role: 'assistant', channel: 'analysis', delta: cot },
      { type: 'message-end', role: 'assistant', channel: 'analysis', content: cot, stop: 'end' },
      { type: 'message-start', role: 'assistant', channel: 'final' },
      { type: 'text', role: 'assistant', channel: 'final', delta: '2 + 2 = 4.' },
      { type: 'message-end', role: 'assistant', channel: 'final', content: '2 + 2 = 4.', stop: 'return' },
      { type: 'return' },
    ]);
    // one text event per content token here (all ASCII)
    expect(ev.filter((e) => e.type === 'text')).toHaveLength(18 + 8);
    expect(parseMessages(DOC_COMPLETION, { startInHeader: true })).toEqual([
      { role: 'assistant', channel: 'analysis', content: cot, stop: 'end' },
      { role: 'assistant', channel: 'final', content: '2 + 2 = 4.', stop: 'return' },
    ]);
  });

  test('tool call with recipient after the channel (docs layout)', () => {
    const tokens = withSpecials(
      '<|channel|>analysis<|message|>Need to use function get_weather.<|end|>' +
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}<|call|>',
    );
    const ev = merged(run(tokens, { startInHeader: true }));
    const header = { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: 'json', constrained: true };
    expect(ev.slice(3)).toEqual([
      { type: 'message-start', ...header },
      { type: 'text', role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', delta: '{"location":"San Francisco"}' },
      {
        type: 'tool-call',
        recipient: 'functions.get_weather',
        name: 'get_weather',
        channel: 'commentary',
        contentType: 'json',
        arguments: { location: 'San Francisco' },
        raw: '{"location":"San Francisco"}',
      },
      { type: 'message-end', ...header, content: '{"location":"San Francisco"}', stop: 'call' },
    ]);
  });

  test('tool call with recipient in the role section, and <|constrain|> glued to the recipient', () => {
    for (const text of [
      '<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location": "Tokyo"}<|call|>',
      '<|start|>assistant to=functions.get_weather<|channel|>commentary<|constrain|>json<|message|>{"location": "Tokyo"}<|call|>',
      '<|start|>assistant<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{"location": "Tokyo"}<|call|>',
    ]) {
      const ev = run(withSpecials(text));
      expect(ev.find((e) => e.type === 'message-start')).toEqual({
        type: 'message-start', role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: 'json', constrained: true,
      });
      const call = ev.find((e) => e.type === 'tool-call');
      expect(call).toMatchObject({ recipient: 'functions.get_weather', name: 'get_weather', arguments: { location: 'Tokyo' } });
      expect(ev.filter((e) => e.type === 'error')).toEqual([]);
    }
  });

  test('startInHeader with the recipient in the header continuation', () => {
    const ev = run(withSpecials(' to=functions.get_location<|channel|>commentary <|constrain|>json<|message|>{}<|call|>'), {
      startInHeader: true,
    });
    expect(ev.find((e) => e.type === 'tool-call')).toEqual({
      type: 'tool-call', recipient: 'functions.get_location', name: 'get_location', channel: 'commentary', contentType: 'json', arguments: {}, raw: '{}',
    });
  });

  test('invalid JSON arguments give tool-call-error', () => {
    const ev = run(withSpecials('<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a": <|call|>'));
    const err = ev.find((e) => e.type === 'tool-call-error');
    expect(err).toMatchObject({ type: 'tool-call-error', recipient: 'functions.f', name: 'f', channel: 'commentary', raw: '{"a": ' });
    expect(typeof (err as { error: string }).error).toBe('string');
    expect(ev.some((e) => e.type === 'tool-call')).toBe(false);
    expect(ev[ev.length - 1]).toMatchObject({ type: 'message-end', stop: 'call' });
  });

  test('non-JSON built-in tool input (python) is passed as a string', () => {
    const ev = run(withSpecials('<|start|>assistant<|channel|>analysis to=python code<|message|>print(1+1)<|call|>'));
    expect(ev.find((e) => e.type === 'tool-call')).toEqual({
      type: 'tool-call', recipient: 'python', name: 'python', channel: 'analysis', contentType: 'code', arguments: 'print(1+1)', raw: 'print(1+1)',
    });
  });

  test('harmony tool-call completion ids without a stop token (ends at eos: no tool-call)', () => {
    const tokens = [
      200005, 35644, 200008, 1844, 31064, 25, 392, 4827, 382, 290, 11122, 306, 40510, 16842, 1416, 1309, 316, 1199, 37342, 170154,
      4584, 13, 200007, 200006, 173781, 200005, 35644, 316, 28, 29712, 170154, 3490, 200008, 10848, 7693, 1243, 392, 173844, 18583,
    ];
    const ev = run(tokens, { startInHeader: true });
    expect(ev.some((e) => e.type === 'tool-call')).toBe(false);
    expect(parseMessages(tokens, { startInHeader: true })).toEqual([
      { role: 'assistant', channel: 'analysis', content: 'User asks: "What is the weather in Tokyo?" We need to use lookup_weather tool.', stop: 'end' },
      { role: 'assistant', channel: 'analysis', recipient: 'lookup_weather', contentType: 'code', content: '{"location": "Tokyo"}', stop: 'eos' },
    ]);
  });

  test('tool result messages (tool name as role)', () => {
    expect(parseMessages(withSpecials('<|start|>browser.search to=assistant<|channel|>commentary<|message|>{"result": "https://openai.com/"}<|end|>'))).toEqual([
      { role: 'tool', name: 'browser.search', recipient: 'assistant', channel: 'commentary', content: '{"result": "https://openai.com/"}', stop: 'end' },
    ]);
    expect(parseMessages(withSpecials('<|start|>functions.lookup_weather<|message|>{"temperature": 20}<|end|>'))).toEqual([
      { role: 'tool', name: 'functions.lookup_weather', content: '{"temperature": 20}', stop: 'end' },
    ]);
  });

  test('UTF-8: emoji and CJK split across tokens are emitted whole', () => {
    const content = [31446, 244, 54462, 246, 172, 254, 106, 115]; // 💖 龘 𠮷
    const ev = run([...withSpecials('<|start|>assistant<|channel|>final<|message|>'), ...content, 200002]);
    expect(ev.filter((e) => e.type === 'text').map((e) => (e as { delta: string }).delta)).toEqual(['💖', '龘', '𠮷']);
  });

  test('incomplete bytes are flushed as U+FFFD at end of message / stream and never leak into the next', () => {
    const ev = run([...withSpecials('<|start|>assistant<|message|>'), 9552, ...tokenizer.encode('Hi')]);
    expect(ev[ev.length - 1]).toEqual({ type: 'message-end', role: 'assistant', content: ' \uFFFDHi', stop: 'eos' });
    const msgs = parseMessages([
      ...withSpecials('<|start|>assistant<|message|>'), 9552, 9552, 200007,
      ...withSpecials('<|start|>assistant<|message|>Hi<|end|>'),
    ]);
    expect(msgs.map((m) => m.content)).toEqual([' \uFFFD \uFFFD', 'Hi']);
  });

  test('unexpected tokens become error events and parsing recovers', () => {
    const garbage = tokenizer.encode('junk before');
    const ev = run([...garbage, ...withSpecials('<|start|>assistant<|channel|>final<|message|>ok<|end|>')]);
    expect(ev[0]).toEqual({ type: 'error', message: expect.stringContaining('expecting <|start|>'), token: garbage[0] });
    expect(ev.filter((e) => e.type === 'error')).toHaveLength(1); // one report per desync
    expect(ev[ev.length - 1]).toMatchObject({ type: 'message-end', channel: 'final', content: 'ok', stop: 'end' });

    // stray special in content is reported and ignored
    const ev2 = run(withSpecials('<|start|>assistant<|channel|>final<|message|>a<|channel|>b<|reserved_200100|>c<|return|>'));
    expect(ev2.filter((e) => e.type === 'error').map((e) => (e as { token: number }).token)).toEqual([200005, 200100]);
    expect(ev2.find((e) => e.type === 'message-end')).toMatchObject({ content: 'abc', stop: 'return' });

    // <|start|> in the middle of content closes the message as interrupted
    const ev3 = run(withSpecials('<|start|>assistant<|channel|>analysis<|message|>think<|start|>assistant<|channel|>final<|message|>done<|return|>'));
    expect(ev3.filter((e) => e.type === 'message-end').map((e) => [(e as { content: string }).content, (e as { stop: string }).stop])).toEqual([
      ['think', 'interrupted'],
      ['done', 'return'],
    ]);

    // invalid ids
    const ev4 = run([-1, 201088, 1.5, ...withSpecials('<|start|>user<|message|>x<|end|>')]);
    expect(ev4.filter((e) => e.type === 'error').map((e) => (e as { token: number }).token)).toEqual([-1, 201088, 1.5]);
    expect(ev4.find((e) => e.type === 'message-end')).toMatchObject({ role: 'user', content: 'x' });

    // unknown special in header: dropped until the next <|start|>
    const ev5 = run(withSpecials('<|start|>assistant<|endoftext|>zzz<|start|>assistant<|message|>y<|end|>'));
    expect(ev5.filter((e) => e.type === 'error')).toHaveLength(1);
    expect(ev5.filter((e) => e.type === 'message-end')).toHaveLength(1);

    // stream ending inside a header
    expect(run(withSpecials('<|start|>assistant<|channel|>fin'))).toEqual([
      { type: 'error', message: 'stream ended inside a message header', token: null },
    ]);
    expect(run([], { startInHeader: true })).toEqual([]);
  });

  test('missing <|message|>: header closed by a stop token is recovered (as harmony non-strict)', () => {
    const ev = run(withSpecials('<|channel|>commentary Hello<|end|>'), { startInHeader: true });
    expect(ev[0]).toMatchObject({ type: 'error', token: 200007 });
    expect(merged(ev).slice(1)).toEqual([
      { type: 'message-start', role: 'assistant', channel: 'commentary' },
      { type: 'text', role: 'assistant', channel: 'commentary', delta: 'Hello' },
      { type: 'message-end', role: 'assistant', channel: 'commentary', content: 'Hello', stop: 'end' },
    ]);
  });

  test('parser keeps completed messages and can be reused after end()', () => {
    const p = new HarmonyStreamParser({ startInHeader: true });
    p.pushAll(withSpecials('<|channel|>final<|message|>one<|return|>'));
    p.end();
    p.pushAll(withSpecials('<|channel|>final<|message|>two<|return|>'));
    p.end();
    expect(p.messages.map((m) => m.content)).toEqual(['one', 'two']);
  });
});

describe('round trip render -> parseMessages', () => {
  test('messages come back (docs tool-calling conversation)', () => {
    const conv: Conversation = {
      system: { reasoningEffort: 'high', currentDate: '2025-06-28' },
      developer: { instructions: 'Use a friendly tone.', tools: [{ name: 'get_location', description: 'Gets the location of the user.' }] },
      messages: [
        { role: 'user', content: 'What is the weather like in SF? 🌁 東京も' },
        { role: 'assistant', channel: 'analysis', content: 'Need to use function get_weather.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: 'json', content: '{"location":"San Francisco"}' },
        { role: 'tool', name: 'functions.get_weather', content: '{"sunny": true, "temperature": 20}' },
        { role: 'assistant', channel: 'final', content: 'It is sunny ☀️ and 20°C.' },
      ],
    };
    for (const recipientPlacement of ['channel', 'role'] as const) {
      const ids = renderConversation(conv, { appendStart: false, dropAnalysis: 'none', recipientPlacement });
      expect(parseMessages(ids)).toEqual([
        { role: 'system', content: renderSystemContent(conv.system || {}, true), stop: 'end' },
        { role: 'developer', content: renderDeveloperContent(conv.developer!), stop: 'end' },
        { role: 'user', content: 'What is the weather like in SF? 🌁 東京も', stop: 'end' },
        { role: 'assistant', channel: 'analysis', content: 'Need to use function get_weather.', stop: 'end' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: 'json', constrained: true, content: '{"location":"San Francisco"}', stop: 'call' },
        { role: 'tool', name: 'functions.get_weather', recipient: 'assistant', channel: 'commentary', content: '{"sunny": true, "temperature": 20}', stop: 'end' },
        { role: 'assistant', channel: 'final', content: 'It is sunny ☀️ and 20°C.', stop: 'end' },
      ]);
    }
  });

  test('random conversations round trip', () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const words = ['hello', ' world', '🎉', '日本語', '\n', ' ', '{"a":1}', 'naïve', '<|end|>', 'to=x', '  ', '💖龘', 'Ω'];
    for (let n = 0; n < 200; n++) {
      const messages: Conversation['messages'] = [];
      for (let i = 0, k = 1 + Math.floor(rnd() * 6); i < k; i++) {
        const content = Array.from({ length: Math.floor(rnd() * 8) }, () => pick(words)).join('');
        const kind = pick(['user', 'analysis', 'final', 'call', 'tool'] as const);
        if (kind === 'user') messages.push({ role: 'user', content });
        else if (kind === 'analysis' || kind === 'final') messages.push({ role: 'assistant', channel: kind, content });
        else if (kind === 'call') messages.push({ role: 'assistant', channel: 'commentary', recipient: 'functions.f', contentType: 'json', content });
        else messages.push({ role: 'tool', name: 'functions.f', content });
      }
      const ids = renderConversation({ system: false, messages }, { appendStart: false, dropAnalysis: 'none', recipientPlacement: pick(['channel', 'role'] as const) });
      const back = parseMessages(ids);
      expect(back.map((m) => m.content)).toEqual(messages.map((m) => m.content));
      expect(back.map((m) => m.role)).toEqual(messages.map((m) => m.role));
      expect(back.map((m) => m.channel)).toEqual(messages.map((m) => (m.role === 'tool' ? 'commentary' : m.channel)));
    }
  });
});

describe('fuzz', () => {
  test('thousands of random token streams: never throws, events well formed', () => {
    let seed = 0x2545f491;
    const rnd = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const structural = [200006, 200008, 200005, 200003, 200007, 200002, 200012];
    const others = [199998, 199999, 200000, 200004, 200013, 200100, 201087];
    const fragments = [
      withSpecials('<|start|>assistant'),
      withSpecials('<|channel|>analysis<|message|>'),
      withSpecials('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>'),
      withSpecials(' to=functions.f<|channel|>commentary<|message|>'),
      tokenizer.encode('{"location":"Tokyo"}'),
      tokenizer.encode('{"bad":'),
      [31446, 244, 54462, 246, 172, 254, 106, 115, 9552, 71344],
      tokenizer.encode('assistant'),
      tokenizer.encode('functions.x to=assistant'),
    ];
    const textTypes = new Set(['message-start', 'text', 'tool-call', 'tool-call-error', 'message-end', 'return', 'error']);
    let totalEvents = 0;
    let totalMessages = 0;
    let totalCalls = 0;
    for (let n = 0; n < 3000; n++) {
      const tokens: number[] = [];
      const len = Math.floor(rnd() * 60);
      while (tokens.length < len) {
        const r = rnd();
        if (r < 0.3) tokens.push(pick(structural));
        else if (r < 0.35) tokens.push(pick(others));
        else if (r < 0.37) tokens.push(pick([-5, 201088, 2 ** 32, 0.5, NaN]));
        else if (r < 0.6) tokens.push(...pick(fragments));
        else if (r < 0.8) tokens.push(Math.floor(rnd() * 300));
        else tokens.push(Math.floor(rnd() * 199998));
      }
      const opts = rnd() < 0.5 ? { startInHeader: true } : {};
      const p = createHarmonyParser(opts);
      const events: HarmonyEvent[] = [];
      expect(() => {
        for (const t of tokens) events.push(...p.push(t));
        events.push(...p.end());
      }).not.toThrow();

      // well-formedness
      let open: { content: string; role: string; recipient?: string } | null = null;
      let lastEnd: HarmonyEvent | null = null;
      let ends = 0;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        expect(textTypes.has(e.type)).toBe(true);
        switch (e.type) {
          case 'message-start':
            expect(open).toBeNull();
            expect(['system', 'developer', 'user', 'assistant', 'tool']).toContain(e.role);
            open = { content: '', role: e.role, recipient: e.recipient };
            break;
          case 'text':
            expect(open).not.toBeNull();
            expect(e.delta.length).toBeGreaterThan(0);
            expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(e.delta)).toBe(false);
            open!.content += e.delta;
            break;
          case 'tool-call':
          case 'tool-call-error': {
            expect(open).not.toBeNull();
            expect(open!.role).toBe('assistant');
            expect(e.recipient).toBe(open!.recipient);
            expect(e.raw).toBe(open!.content);
            const next = events[i + 1]!;
            expect(next.type).toBe('message-end');
            expect(['end', 'call', 'return']).toContain((next as { stop: string }).stop);
            totalCalls++;
            break;
          }
          case 'message-end':
            expect(open).not.toBeNull();
            expect(e.content).toBe(open!.content);
            expect(['end', 'return', 'call', 'eos', 'interrupted']).toContain(e.stop);
            open = null;
            lastEnd = e;
            ends++;
            break;
          case 'return':
            expect(lastEnd).toMatchObject({ stop: 'return' });
            expect(events[i - 1]).toBe(lastEnd);
            break;
          case 'error':
            expect(typeof e.message).toBe('string');
            expect(e.token === null || typeof e.token === 'number').toBe(true);
            break;
        }
      }
      expect(open).toBeNull(); // end() always closes
      expect(p.messages).toHaveLength(ends);
      totalEvents += events.length;
      totalMessages += ends;
    }
    // the generator actually exercises the parser
    expect(totalMessages).toBeGreaterThan(1000);
    expect(totalCalls).toBeGreaterThan(50);
    expect(totalEvents).toBeGreaterThan(10000);

    function pick<T>(xs: readonly T[]): T {
      return xs[Math.floor(rnd() * xs.length)]!;
    }
  });
});
