import { describe, expect, test } from 'vitest';
import { tokenizer, createStreamDecoder, SPECIAL_TOKENS, VOCAB_SIZE } from '../lib/tokenizer.js';

// Completion from the openai/harmony docs (StreamableParser example), with its exact ids.
const DOC_COMPLETION = [
  200005, 35644, 200008, 1844, 31064, 25, 392, 4827, 382, 220, 17, 659, 220, 17, 16842, 12295, 81645, 13, 51441,
  6052, 13, 200007, 200006, 173781, 200005, 17196, 200008, 17, 659, 220, 17, 314, 220, 19, 13, 200002,
];
const DOC_COMPLETION_TEXT =
  '<|channel|>analysis<|message|>User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.<|end|>' +
  '<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>';

function streamAll(ids: number[]): string[] {
  const d = createStreamDecoder();
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

describe('o200k_harmony special tokens', () => {
  test('named specials have the exact ids', () => {
    expect(tokenizer.specialTokens).toEqual({
      startoftext: 199998,
      endoftext: 199999,
      return: 200002,
      constrain: 200003,
      channel: 200005,
      start: 200006,
      end: 200007,
      message: 200008,
      call: 200012,
    });
    expect(SPECIAL_TOKENS.start).toBe(200006);
    expect(tokenizer.special('<|startoftext|>')).toBe(199998);
    expect(tokenizer.special('<|endoftext|>')).toBe(199999);
    expect(tokenizer.special('<|return|>')).toBe(200002);
    expect(tokenizer.special('<|constrain|>')).toBe(200003);
    expect(tokenizer.special('<|channel|>')).toBe(200005);
    expect(tokenizer.special('<|start|>')).toBe(200006);
    expect(tokenizer.special('<|end|>')).toBe(200007);
    expect(tokenizer.special('<|message|>')).toBe(200008);
    expect(tokenizer.special('<|call|>')).toBe(200012);
    expect(tokenizer.special('call')).toBe(200012);
  });

  test('the same ids as gpt-tokenizer ships (special text encodes to the id)', () => {
    for (const [name, id] of Object.entries(SPECIAL_TOKENS)) {
      expect(tokenizer.encode(`<|${name}|>`, { allowSpecial: 'all' })).toEqual([id]);
      expect(tokenizer.decode([id])).toBe(`<|${name}|>`);
    }
    for (const id of [200000, 200001, 200004, 200009, 200010, 200011, 200013, 200014, 201087]) {
      expect(tokenizer.encode(`<|reserved_${id}|>`, { allowSpecial: true })).toEqual([id]);
      expect(tokenizer.decode([id])).toBe(`<|reserved_${id}|>`);
    }
  });

  test('reserved names, ranges and vocab size', () => {
    expect(tokenizer.vocabSize).toBe(201088);
    expect(VOCAB_SIZE).toBe(201088);
    expect(tokenizer.special('<|reserved_200000|>')).toBe(200000);
    expect(tokenizer.special('reserved_201087')).toBe(201087);
    expect(() => tokenizer.special('<|reserved_200006|>')).toThrow(); // that id is <|start|>
    expect(() => tokenizer.special('<|reserved_201088|>')).toThrow();
    expect(() => tokenizer.special('<|nope|>')).toThrow();
    expect(tokenizer.specialName(200004)).toBe('<|reserved_200004|>');
    expect(tokenizer.specialName(200018)).toBe('<|reserved_200018|>');
    expect(tokenizer.specialName(200006)).toBe('<|start|>');
    expect(tokenizer.specialName(1000)).toBeUndefined();
    expect(tokenizer.isSpecial(199997)).toBe(false);
    expect(tokenizer.isSpecial(199998)).toBe(true);
    expect(tokenizer.isSpecial(201087)).toBe(true);
    expect(tokenizer.isSpecial(201088)).toBe(false);
    expect(tokenizer.isSpecial(24912)).toBe(false);
    expect(tokenizer.isValidId(201087)).toBe(true);
    expect(tokenizer.isValidId(201088)).toBe(false);
    expect(tokenizer.isValidId(-1)).toBe(false);
    expect(tokenizer.isValidId(1.5)).toBe(false);
  });
});

describe('encode / decode', () => {
  test('ordinary text', () => {
    expect(tokenizer.encode('hello world')).toEqual([24912, 2375]);
    expect(tokenizer.decode([24912, 2375])).toBe('hello world');
    expect(tokenizer.encode('')).toEqual([]);
  });

  test('special token text is ordinary text by default', () => {
    const ids = tokenizer.encode('<|start|>user');
    expect(ids).not.toContain(200006);
    expect(ids.every((id) => !tokenizer.isSpecial(id))).toBe(true);
    expect(tokenizer.decode(ids)).toBe('<|start|>user');
    expect(tokenizer.encode('<|start|>user', { allowSpecial: false })).toEqual(ids);
  });

  test('allowSpecial: all / true / list', () => {
    expect(tokenizer.encode('<|start|>user', { allowSpecial: 'all' })).toEqual([200006, 1428]);
    expect(tokenizer.encode('<|start|>user', { allowSpecial: true })).toEqual([200006, 1428]);
    const mixed = tokenizer.encode('<|start|>user<|message|>', { allowSpecial: ['<|start|>'] });
    expect(mixed[0]).toBe(200006);
    expect(mixed).not.toContain(200008);
    expect(tokenizer.decode(mixed)).toBe('<|start|>user<|message|>');
    expect(tokenizer.encode('<|start|><|message|>', { allowSpecial: ['start', 'message'] })).toEqual([200006, 200008]);
    expect(() => tokenizer.encode('x', { allowSpecial: ['<|bogus|>'] })).toThrow();
  });

  test('decodes / encodes the docs completion exactly', () => {
    expect(tokenizer.decode(DOC_COMPLETION)).toBe(DOC_COMPLETION_TEXT);
    expect(tokenizer.encode(DOC_COMPLETION_TEXT, { allowSpecial: 'all' })).toEqual(DOC_COMPLETION);
  });

  test('decode of incomplete UTF-8 gives U+FFFD and does not leak into later calls', () => {
    expect(tokenizer.decode([71344])).toBe('\uFFFD'); // first 3 bytes of 🎉
    expect(tokenizer.decode([24912])).toBe('hello');
    expect(tokenizer.decode([71344, 231])).toBe('🎉');
  });

  test('token bytes', () => {
    expect(Array.from(tokenizer.tokenBytes(71344))).toEqual([240, 159, 142]);
    expect(Array.from(tokenizer.tokenBytes(231))).toEqual([137]);
    expect(Array.from(tokenizer.tokenBytes(200006))).toEqual(Array.from(new TextEncoder().encode('<|start|>')));
    expect(Array.from(tokenizer.decodeBytes([24912, 2375]))).toEqual(Array.from(new TextEncoder().encode('hello world')));
  });

  test('invalid ids throw RangeError', () => {
    expect(() => tokenizer.decode([201088])).toThrow(RangeError);
    expect(() => tokenizer.decode([-1])).toThrow(RangeError);
    expect(() => tokenizer.decode([1.5])).toThrow(RangeError);
  });

  test('round trip of mixed scripts', () => {
    const s = 'Grüße, 世界! 🎉🇫🇷 — naïve café ½ 𠮷野家 \u{FEFF}bom \r\n\ttabs';
    expect(tokenizer.decode(tokenizer.encode(s))).toBe(s);
  });
});

describe('stream decoder', () => {
  test('emoji split across two tokens is held back until complete', () => {
    expect(tokenizer.encode('💖')).toEqual([31446, 244]);
    expect(streamAll([31446, 244])).toEqual(['', '💖', '']);
    expect(tokenizer.encode('🎉')).toEqual([71344, 231]);
    expect(streamAll([71344, 231])).toEqual(['', '🎉', '']);
  });

  test('CJK character split across tokens', () => {
    expect(tokenizer.encode('龘')).toEqual([54462, 246]);
    expect(streamAll([54462, 246])).toEqual(['', '龘', '']);
    // 𠮷 (4 bytes) is four single-byte tokens
    const ids = tokenizer.encode('𠮷野家');
    expect(ids).toEqual([172, 254, 106, 115, 28848, 6150]);
    expect(streamAll(ids)).toEqual(['', '', '', '𠮷', '野', '家', '']);
  });

  test('mixed text: pieces never contain broken sequences and join to the original', () => {
    const s = 'a😀👍🏽b 日本語の文章 한국어 龘 🎉!';
    const ids = tokenizer.encode(s);
    const pieces = streamAll(ids);
    expect(pieces.join('')).toBe(s);
    for (const p of pieces) {
      expect(p).not.toContain('\uFFFD');
      expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(p)).toBe(false);
    }
  });

  test('incomplete bytes at the end flush as U+FFFD; special tokens pass through', () => {
    // 9552 is " " + the first two bytes of a 4-byte sequence
    expect(Array.from(tokenizer.tokenBytes(9552))).toEqual([32, 240, 159]);
    expect(tokenizer.encode('Hi')).toHaveLength(1);
    expect(streamAll([9552, ...tokenizer.encode('Hi')])).toEqual([' ', '\uFFFDHi', '']);
    expect(streamAll([9552])).toEqual([' ', '\uFFFD']);
    expect(streamAll([200006, 1428])).toEqual(['<|start|>', 'user', '']);
  });

  test('streamed pieces equal batch decode for arbitrary ids', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let n = 0; n < 200; n++) {
      const ids = Array.from({ length: 1 + Math.floor(rnd() * 20) }, () =>
        rnd() < 0.5 ? Math.floor(rnd() * 400) : Math.floor(rnd() * 199998),
      );
      expect(streamAll(ids).join('')).toBe(tokenizer.decode(ids));
    }
  });

  test('reset drops held bytes', () => {
    const d = createStreamDecoder();
    expect(d.push(71344)).toBe('');
    d.reset();
    expect(d.push(24912)).toBe('hello');
    expect(d.flush()).toBe('');
  });
});
