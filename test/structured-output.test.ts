// Structured outputs (generate()'s responseFormat; lib/grammar): the JSON-schema matcher byte by byte, the
// token masks against a brute-force walk of the whole vocabulary, and generation on a random model with the
// full o200k vocabulary: whatever the weights, the final channel's message is a document the schema
// accepts, on generate() and on the engine (the same tokens for the same seed).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyntheticModel, generate, SchemaError, type GptOssModel, type ResponseFormat } from '../lib/index.js';
import { compileSchema, initialState, isComplete, step, type MatchState } from '../lib/grammar/json-schema.js';
import { allowedTokens, allows, MaskCache, maskCacheBytes, maskStats } from '../lib/grammar/token-mask.js';
import { renderConversation } from '../lib/harmony/index.js';
import { tokenizer, SPECIAL_TOKENS as S, FIRST_SPECIAL_ID } from '../lib/tokenizer.js';
import { FULL_VOCAB_TINY } from './helpers/checkpoint.js';
import type { BatchItem, StepBackend } from '../lib/engine/backend.js';
import { assistantReply, ScriptedBackend } from './helpers/scripted-backend.js';

const PERSON = {
  type: 'object',
  properties: {
    name: { enum: ['Ada', 'Grace', 'Édith'] },
    age: { type: 'integer' },
    score: { type: ['number', 'null'] },
    tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 },
    ok: { type: 'boolean' },
    pet: { anyOf: [{ $ref: '#/$defs/pet' }, { type: 'null' }] },
  },
  required: ['name', 'age', 'ok'],
  additionalProperties: false,
  $defs: { pet: { type: 'object', properties: { kind: { const: 'cat' }, lives: { type: 'integer' } }, required: ['kind'], additionalProperties: false } },
};

function feed(schema: unknown, text: string): MatchState | undefined {
  let s: MatchState | undefined = initialState(compileSchema(schema));
  for (const b of Buffer.from(text, 'utf8')) if ((s = step(s!, b)) === undefined) return undefined;
  return s;
}
const verdict = (schema: unknown, text: string): 'complete' | 'prefix' | 'invalid' => {
  const s = feed(schema, text);
  return s === undefined ? 'invalid' : isComplete(s) ? 'complete' : 'prefix';
};

/** An independent check that a parsed value is a PERSON. */
function isPerson(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (!keys.every((k) => ['name', 'age', 'score', 'tags', 'ok', 'pet'].includes(k))) return false;
  if (!['Ada', 'Grace', 'Édith'].includes(o.name as string) || !Number.isInteger(o.age) || typeof o.ok !== 'boolean') return false;
  if ('score' in o && o.score !== null && typeof o.score !== 'number') return false;
  if ('tags' in o && !(Array.isArray(o.tags) && o.tags.length <= 3 && o.tags.every((t) => t === 'a' || t === 'b'))) return false;
  if ('pet' in o && o.pet !== null) {
    const p = o.pet as Record<string, unknown>;
    if (typeof p !== 'object' || p.kind !== 'cat' || Object.keys(p).some((k) => k !== 'kind' && k !== 'lives') || ('lives' in p && !Number.isInteger(p.lives))) return false;
  }
  return true;
}

describe('the JSON-schema matcher', () => {
  it('reads documents byte by byte: complete, a prefix, or invalid', () => {
    const cases: [string, ReturnType<typeof verdict>][] = [
      ['{"name":"Ada","age":36,"ok":true}', 'complete'],
      ['{ "ok" : false , "age" : -0, "name" : "Édith", "tags": [ "a" , "b" ], "pet": {"kind": "cat", "lives": 9}, "score": 1.5e-3 }', 'complete'],
      ['{"name":"Ada","age":36,"ok":true,"score":null,"pet":null}', 'complete'],
      ['{"name":"Ada","age":36', 'prefix'],
      ['{"na', 'prefix'],
      ['{"name":"Ada","age":36}', 'invalid'], // ok is required
      ['{"name":"Bob","age":1,"ok":true}', 'invalid'], // not in the enum
      ['{"name":"Ada","age":3.5,"ok":true}', 'invalid'], // an integer
      ['{"name":"Ada","age":01,"ok":true}', 'invalid'], // no leading zeros
      ['{"name":"Ada","age":1,"ok":true,"extra":1}', 'invalid'], // additionalProperties false
      ['{"name":"Ada","name":"Ada","age":1,"ok":true}', 'invalid'], // each property once
      ['{"name":"Ada","age":1,"ok":true,"tags":["a","a","a","a"]}', 'invalid'], // maxItems
      ['{"name":"Ada","age":1,"ok":true,"pet":{"lives":1}}', 'invalid'], // kind required
      ['{"name":"Ada","age":1,"ok":tru', 'prefix'],
      ['[1]', 'invalid'],
    ];
    for (const [text, want] of cases) expect(verdict(PERSON, text), text).toBe(want);
    // free JSON ({type: object} is json_object): strings with escapes and any UTF-8, nested values
    const obj = { type: 'object' };
    expect(verdict(obj, '{"a": "x\\"\\u00e9\\n", "c": [1, {"d": null}, true, -2.5E+10], "é": "日本"}')).toBe('complete');
    expect(verdict(obj, '{"a\\"b": 1}')).toBe('invalid'); // property names are written without escapes
    expect(verdict(obj, '{"a": "\\x"}')).toBe('invalid');
    expect(verdict(obj, '{"a": "\u0001"}')).toBe('invalid');
    expect(verdict(obj, '{"a": 1.}')).toBe('invalid');
    expect(verdict(obj, '"text"')).toBe('invalid');
    expect(verdict(true, '"text"')).toBe('complete');
    expect(verdict({ type: 'integer' }, '12')).toBe('complete'); // a number at the top ends with the input
    expect(verdict({ type: 'integer' }, '1'.repeat(17))).toBe('invalid'); // at most 16 digits
    expect(verdict(obj, '{' + ' '.repeat(25) + '}')).toBe('invalid'); // whitespace runs are bounded
    // recursion through $defs
    const tree = { $ref: '#/$defs/node', $defs: { node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/node' } } }, additionalProperties: false } } };
    expect(verdict(tree, '{"kids":[{"kids":[]},{}]}')).toBe('complete');
    expect(verdict(tree, '{"kids":[{"x":1}]}')).toBe('invalid');
  });

  it('refuses what it cannot enforce, naming the keyword and where it is', () => {
    expect(() => compileSchema({ type: 'string', pattern: '^(?=a)' })).toThrow(/#\.pattern: pattern "\^\(\?=a\)": a lookaround or named group at offset 2 is not supported/);
    expect(() => compileSchema({ type: 'string', pattern: '(a)\\1' })).toThrow(/the backreference \\1/);
    expect(() => compileSchema({ type: 'string', pattern: 'a', format: 'date' })).toThrow(/pattern and format 'date' together/);
    expect(() => compileSchema({ type: 'string', pattern: 'a', maxLength: 3 })).toThrow(/minLength \/ maxLength beside pattern/);
    expect(() => compileSchema({ type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } })).toThrow(/#\.properties\.a: the keyword 'not'/);
    // format is an annotation (JSON Schema 2020-12's default); lenient mode (strict tools) skips what only narrows values
    expect(verdict({ type: 'string', format: 'date-time' }, '"whenever"')).toBe('invalid');
    expect(() => compileSchema({ type: 'string', pattern: '^(?!a)' }, { lenient: true })).not.toThrow(); // a pattern it cannot hold: skipped
    expect(verdict({ type: 'string', format: 'email' }, '"not an address"')).toBe('complete'); // a format it does not hold: an annotation
    expect(() => compileSchema({ type: 'array', items: { type: 'integer' }, uniqueItems: true }, { lenient: true })).not.toThrow();
    expect(() => compileSchema({ not: { type: 'string' } }, { lenient: true })).toThrow(/the keyword 'not' is not supported/);
    // oneOf over branches that start differently is anyOf (never two matches); allOf of one schema is that schema
    expect(verdict({ oneOf: [{ type: 'string' }, { type: 'integer' }, { enum: [true] }].slice(0, 2) }, '12')).toBe('complete');
    expect(verdict({ oneOf: [{ enum: ['a', 'b'] }, { const: 'c' }] }, '"c"')).toBe('complete');
    expect(() => compileSchema({ oneOf: [{ enum: ['a', 'b'] }, { const: 'b' }] })).toThrow(/#\.oneOf: the value "b" is in two branches/);
    expect(() => compileSchema({ oneOf: [{ type: 'string' }, true] })).toThrow(/#\.oneOf: a branch accepts anything/);
    expect(() => compileSchema({ oneOf: [{ type: 'string' }, {}] })).toThrow(/#\.oneOf: two branches accept strings/);
    expect(() => compileSchema({ oneOf: [{ type: 'object' }, { type: 'object', properties: { a: true } }] })).toThrow(/#\.oneOf: two branches accept objects/);
    const withDefs = { $defs: { P: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] } }, type: 'object', properties: { p: { allOf: [{ $ref: '#/$defs/P' }], description: 'the point' } }, required: ['p'] };
    expect(verdict(withDefs, '{"p":{"x":3}}')).toBe('complete');
    expect(verdict(withDefs, '{"p":{"y":3}}')).not.toBe('complete');
    expect(() => compileSchema({ allOf: [{ type: 'string' }, { type: 'string' }] })).toThrow(/only an allOf of one schema/);
    expect(() => compileSchema({ anyOf: [{ type: 'string' }, { type: 'string', description: 'x' }] })).toThrow(/two branches accept strings/);
    expect(() => compileSchema({ $ref: '#/$defs/missing' })).toThrow(/is not defined/);
    expect(() => compileSchema({ type: 'object', required: ['x'] })).toThrow(/'x' is not among the properties/);
    expect(() => compileSchema({ type: 'colour' })).toThrow(/'colour' is not a JSON schema type/);
    expect(() => compileSchema(false)).toThrow(SchemaError);
    expect(() => compileSchema({ type: 'integer', minimum: 3, maximum: 2.5 })).toThrow(/#: no integer is within its minimum and maximum/);
    expect(() => compileSchema({ type: 'number', exclusiveMinimum: true })).toThrow(/exclusiveMinimum must be a number \(the draft-4 boolean form/);
    expect(() => compileSchema({ type: 'string', minLength: 4, maxLength: 3 })).toThrow(/maxLength must be an integer >= minLength/);
  });

  it('pattern: a string matches exactly when JavaScript\'s RegExp (u) does, escapes decoded; every prefix of a match is viable; formats held exactly', () => {
    const patterns = ['^[a-z]+$', 'ab', '^\\d{3}-\\d{4}$', '^(foo|bar)+$', 'x*y?z$', '^[^aeiou]{2,4}$', '^.$', '^\\w+@\\w+\\.com$', 'é', '^\\S+$', '^[α-ω]{1,3}$', '^a.c$', '^\\u00e9?x$', '^[\\-+]?\\d+(\\.\\d+)?$', '^(a|ab)(c|bcd)(d*)$', '\\s'];
    const strings = ['abc', 'ABC', '', 'ab', 'xaby', '555-1234', '55-1234', 'foobarfoo', 'fooba', 'zzz', 'xxyz', 'z', 'bcd', 'aeb', 'bcdfg', 'é', '\n', 'x', 'éx', 'joe@mail.com', 'jo e@mail.com', 'café', 'a"b', 'a\\b', 'tab\there', '😀', 'a😀c', 'αβγ', 'αβγδ', '-12.5', '+3', '1.', 'abcd', 'abcdd', '\u2028', 'a\u0000c'];
    for (const p of patterns) {
      const re = new RegExp(p, 'u');
      for (const t of strings) {
        const text = JSON.stringify(t);
        const want = re.test(t);
        const got = verdict({ type: 'string', pattern: p }, text);
        expect(got === 'complete', `${p} ${text}`).toBe(want);
        if (want) for (let k = 1; k < text.length; k++) expect(verdict({ type: 'string', pattern: p }, text.slice(0, k)), `${p} ${text} prefix ${k}`).toBe('prefix');
        // the same string with every character written as a \u escape (BMP ones)
        if (want && [...t].every((c) => c.codePointAt(0)! <= 0xffff)) {
          const escaped = `"${[...t].map((c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`).join('')}"`;
          expect(verdict({ type: 'string', pattern: p }, escaped), `${p} ${escaped}`).toBe('complete');
        }
      }
    }
    // a character cut short is refused as soon as no code point it can become fits: 0xCE opens U+0380..U+03BF
    const bytes = (schema: unknown, b: number[]): MatchState | undefined => {
      let st: MatchState | undefined = initialState(compileSchema(schema));
      for (const x of b) if ((st = step(st!, x)) === undefined) return undefined;
      return st;
    };
    expect(bytes({ type: 'string', pattern: '^[a-z]+$' }, [0x22, 0xce])).toBeUndefined();
    expect(bytes({ type: 'string', pattern: '^[α-ω]+$' }, [0x22, 0xce])).toBeDefined();
    expect(bytes({ type: 'string', pattern: '^[α-ω]+$' }, [0x22, 0xce, 0x80])).toBeUndefined(); // U+0380 is not in α-ω
    expect(bytes({ type: 'string', pattern: '^.+$' }, [0x22, 0xc0, 0x80])).toBeUndefined(); // an overlong form
    expect(bytes({ type: 'string', pattern: '^.+$' }, [0x22, 0xed, 0xa0])).toBeUndefined(); // a surrogate
    const formats: [string, string, boolean][] = [
      ['date', '2024-02-29', true], ['date', '2024-13-01', false], ['date', '2024-1-01', false],
      ['date-time', '2024-02-29T12:30:00Z', true], ['date-time', '2024-02-29T12:30:00.123+05:30', true], ['date-time', '2024-02-29T24:00:00Z', false], ['date-time', '2024-02-29 12:30:00Z', false],
      ['time', '23:59:60Z', true], ['time', '23:59', false],
      ['uuid', '123e4567-e89b-12d3-a456-426614174000', true], ['uuid', '123e4567e89b12d3a456426614174000', false],
      ['ipv4', '192.168.1.255', true], ['ipv4', '256.1.1.1', false], ['ipv4', '01.2.3.4', false],
    ];
    for (const [f, t, good] of formats) expect(verdict({ type: 'string', format: f }, JSON.stringify(t)), `${f} ${t}`).toBe(good ? 'complete' : 'invalid');
  });

  it('bounds: a number or integer within minimum / maximum / exclusive ones (no exponent), a string within minLength / maxLength code points', () => {
    // every text of a grid, against JSON.parse and the bounds; and every prefix of an accepted text is a prefix
    // (an integer is written without a point: 1.0 is not one here)
    const cases: { schema: Record<string, unknown>; ok: (v: unknown) => boolean }[] = [
      { schema: { type: 'integer', minimum: 1, maximum: 100 }, ok: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 100 },
      { schema: { type: 'integer', exclusiveMinimum: -7.5, exclusiveMaximum: 3 }, ok: (v) => Number.isInteger(v) && (v as number) > -7.5 && (v as number) < 3 },
      { schema: { type: 'number', exclusiveMinimum: 0, maximum: 2.5 }, ok: (v) => typeof v === 'number' && v > 0 && v <= 2.5 },
      { schema: { type: 'number', minimum: -0.25 }, ok: (v) => typeof v === 'number' && v >= -0.25 },
      { schema: { type: ['integer', 'null'], maximum: -5 }, ok: (v) => v === null || (Number.isInteger(v) && (v as number) <= -5) },
    ];
    const texts = ['null', '-', '0', '-0', '00', '1e2', '2E0', '-1.', ...Array.from({ length: 241 }, (_, i) => String(i - 120))];
    for (const whole of ['0', '1', '2', '-0', '-1', '12']) for (const f of ['0', '1', '25', '5', '50', '51', '0001']) texts.push(`${whole}.${f}`);
    for (const { schema, ok } of cases) {
      for (const t of texts) {
        let want: 'complete' | 'invalid' = 'invalid';
        try {
          const v = JSON.parse(t) as unknown;
          const integer = JSON.stringify(schema).includes('integer');
          if (ok(v) && !/[eE]/.test(t) && !(integer && t.includes('.'))) want = 'complete';
        } catch {
          /* not JSON: never complete */
        }
        const got = verdict(schema, t);
        if (want === 'complete') {
          expect(got, `${JSON.stringify(schema)} ${t}`).toBe('complete');
          for (let k = 1; k < t.length; k++) expect(verdict(schema, t.slice(0, k)), `${JSON.stringify(schema)} ${t} prefix ${k}`).not.toBe('invalid');
        } else expect(got, `${JSON.stringify(schema)} ${t}`).not.toBe('complete');
      }
    }
    // a prefix that cannot reach the range is refused at once
    expect(verdict({ type: 'integer', minimum: 1, maximum: 100 }, '0')).toBe('invalid');
    expect(verdict({ type: 'integer', minimum: 1, maximum: 100 }, '-')).toBe('invalid');
    expect(verdict({ type: 'integer', minimum: 1, maximum: 100 }, '101')).toBe('invalid');
    expect(verdict({ type: 'integer', maximum: -5 }, '-4')).toBe('prefix'); // -40 .. -49 are still ahead
    const S = { type: 'string', minLength: 2, maxLength: 3 };
    const strings: [string, boolean][] = [['"a"', false], ['"ab"', true], ['"abc"', true], ['"abcd"', false], ['"é"', false], ['"éé"', true], ['"😀😀😀"', true], ['"😀😀😀😀"', false], ['"\\n\\n"', true], ['"\\u00e9x"', true], ['"\\u00e9xyz"', false]];
    for (const [t, good] of strings) expect(verdict(S, t), t).toBe(good ? 'complete' : 'invalid');
    expect(verdict({ type: 'object', properties: { s: S }, required: ['s'] }, '{"s":"abcd')).toBe('invalid');
    // two schemas' top-level strings are told apart (their states are shared per stack below them: none here)
    const [three, five] = [compileSchema({ type: 'string', maxLength: 3 }), compileSchema({ type: 'string', maxLength: 5 })];
    const read = (node: ReturnType<typeof compileSchema>, t: string): MatchState | undefined => {
      let st: MatchState | undefined = initialState(node);
      for (const x of Buffer.from(t, 'utf8')) if ((st = step(st!, x)) === undefined) return undefined;
      return st;
    };
    expect([read(three, '"abcd"'), read(five, '"abcd"') !== undefined, read(three, '"abcd"')]).toEqual([undefined, true, undefined]);
    // a bounded string is valid UTF-8 (its count is the decoded string's): a stray continuation byte or a cut character fails
    const bytes = (schema: unknown, b: number[]): MatchState | undefined => {
      let st: MatchState | undefined = initialState(compileSchema(schema));
      for (const x of b) if ((st = step(st!, x)) === undefined) return undefined;
      return st;
    };
    expect(bytes(S, [0x22, 0x80])).toBeUndefined();
    expect(bytes(S, [0x22, 0xce, 0x22])).toBeUndefined();
    expect(isComplete(bytes(S, [0x22, 0xce, 0xb2, 0x61, 0x22])!)).toBe(true);
  });
});

describe('token masks', () => {
  it('allow exactly the tokens whose bytes continue the document (a brute-force walk of the vocabulary), and the end tokens once it is complete', () => {
    const vocab = tokenizer.vocabSize;
    const BOUNDED = { type: 'object', properties: { s: { type: 'string', minLength: 2, maxLength: 5 }, n: { type: 'integer', minimum: 10, maximum: 420 } }, required: ['s', 'n'], additionalProperties: false };
    const states: [unknown, string][] = [
      ...['', '{"name":"', '{"name":"Ada","age":3', '{"name":"Ada","age":36,"ok":true', '{"name":"Ada","age":36,"ok":true}'].map((t): [unknown, string] => [PERSON, t]),
      [BOUNDED, '{"s":"abcd'],
      [BOUNDED, '{"s":"ab","n":4'],
      [{ type: 'object', properties: { d: { type: 'string', format: 'date' } }, required: ['d'] }, '{"d":"2024-1'],
    ];
    for (const [schema, text] of states) {
      const state = feed(schema, text)!;
      const mask = allowedTokens(state, [S.return], vocab);
      let allowed = 0;
      for (let id = 0; id < FIRST_SPECIAL_ID; id++) {
        let s: MatchState | undefined = state;
        for (const b of tokenizer.tokenBytes(id)) if ((s = step(s!, b)) === undefined) break;
        expect(allows(mask, id), `${JSON.stringify(text)} + ${JSON.stringify(tokenizer.decode([id]))}`).toBe(s !== undefined);
        if (s !== undefined) allowed++;
      }
      expect(allows(mask, S.return)).toBe(isComplete(state));
      expect(allows(mask, S.end) || allows(mask, S.call)).toBe(false);
      expect(allowed + (isComplete(state) ? 1 : 0)).toBeGreaterThan(0);
    }
  });

  it("every cache's masks share one byte budget: the least recently used go first, whichever cache holds them", () => {
    const vocab = tokenizer.vocabSize;
    const size = Math.ceil(vocab / 32) * 4;
    const compiled = compileSchema(PERSON);
    const at = (text: string): MatchState => {
      let st: MatchState | undefined = initialState(compiled);
      for (const x of Buffer.from(text, 'utf8')) st = step(st!, x);
      return st!;
    };
    const a = new MaskCache(`format:${JSON.stringify(PERSON)}`, [S.return], vocab);
    const b = new MaskCache(`format:${JSON.stringify(PERSON)}`, [], vocab);
    maskCacheBytes(0); // empty every cache first
    maskCacheBytes(3 * size);
    const [t0, t1, t2] = ['{', '{"name":"Ada"', '{"name":"Ada","age":1'];
    a.get(at(t0));
    a.get(at(t1));
    b.get(at(t0));
    expect(maskCacheBytes()).toBe(3 * size);
    expect(a.cached(at(t0))).toBeDefined(); // a's first is the most recent now
    b.get(at(t2)); // over the budget: a's second goes
    expect(a.cached(at(t1))).toBeUndefined();
    expect([a.cached(at(t0)), b.cached(at(t0)), b.cached(at(t2))].every((m) => m !== undefined)).toBe(true);
    expect(maskCacheBytes()).toBe(3 * size);
    maskCacheBytes(64 * 1024 * 1024); // the default
  });

  it("the mask worker's masks (the document's bytes replayed there) equal this thread's, and one state is computed once", async () => {
    const vocab = tokenizer.vocabSize;
    const cache = new MaskCache(`format:${JSON.stringify(PERSON)}`, [S.return], vocab);
    const compiled = compileSchema(PERSON); // one compiled schema, as a generation's plan holds (states are keyed by its nodes)
    const at = (text: string): MatchState => {
      let s: MatchState | undefined = initialState(compiled);
      for (const b of Buffer.from(text, 'utf8')) s = step(s!, b);
      return s!;
    };
    const before = { ...maskStats };
    const texts = ['', '{"name":"Éd', '{"name":"Ada","age":3', '{"name":"Ada","age":36,"ok":true,"tags":[', '{"name":"Ada","age":36,"ok":true}'];
    const fetched = await Promise.all(texts.flatMap((t) => [t, t]).map((t) => cache.fetch(at(t), Buffer.from(t, 'utf8'))));
    texts.forEach((t, i) => {
      const want = allowedTokens(at(t), [S.return], vocab);
      expect(Buffer.from(fetched[2 * i]!.buffer).equals(Buffer.from(want.buffer)), JSON.stringify(t)).toBe(true);
      expect(fetched[2 * i + 1]).toBe(fetched[2 * i]); // the second request shared the first's computation
      expect(cache.cached(at(t))).toBe(fetched[2 * i]);
    });
    expect(maskStats.onWorker - before.onWorker).toBe(texts.length);
    expect(maskStats.inline).toBe(before.inline);
  });
});

describe('the worker threads never hold the process', () => {
  it("a process that warmed the mask worker, or encoded a long text on the tokenizer's, exits on its own", () => {
    const dist = (f: string): string => new URL(`../dist/${f}`, import.meta.url).href;
    const scripts = [
      `import(${JSON.stringify(dist('grammar/token-mask.js'))}).then((m) => m.warmMaskWorker())`,
      `import(${JSON.stringify(dist('index.js'))}).then(async (m) => { await m.tokenizer.encodeAsync('x '.repeat(20000)); })`,
    ];
    for (const code of scripts) {
      const r = spawnSync(process.execPath, ['-e', code], { timeout: 30_000, cwd: fileURLToPath(new URL('..', import.meta.url)) });
      expect([r.signal, r.status, r.stderr.toString()], code).toEqual([null, 0, '']);
    }
  }, 70_000);
});

describe('generation held to a response format (random full-vocabulary model, CPU)', () => {
  let model: GptOssModel;
  beforeAll(async () => {
    model = await createSyntheticModel(FULL_VOCAB_TINY, { device: 'cpu' });
  }, 120_000);
  afterAll(async () => {
    await model?.dispose();
  });
  // a prompt that ends inside the final channel's header: the answer is constrained from its first token
  const prompt = [...renderConversation({ messages: [{ role: 'user', content: 'Describe someone.' }] }), ...tokenizer.encode('<|channel|>final<|message|>', { allowSpecial: 'all' })];

  it('the final message parses and fits the schema, whatever the weights draw; the engine draws the same', async () => {
    const format: ResponseFormat = { type: 'json_schema', schema: PERSON };
    const results = [];
    for (const seed of [1, 2, 3]) {
      const r = await generate(model, prompt, { parse: true, maxTokens: 200, temperature: 1, seed, responseFormat: format }).result;
      expect(r.finishReason, `seed ${seed}`).toBe('stop');
      expect(r.stopToken).toBe(S.return);
      const value = JSON.parse(r.channels.final);
      expect(isPerson(value), r.channels.final).toBe(true);
      results.push(r);
    }
    const engine = model.createEngine({ maxSequences: 3, maxContext: 512, pipelineDecode: true });
    const got = await Promise.all([1, 2, 3].map((seed) => engine.generate(prompt, { parse: true, maxTokens: 200, temperature: 1, seed, responseFormat: format }).result));
    await engine.close();
    got.forEach((r, i) => expect(r.tokens).toEqual(results[i]!.tokens));
    // the same draws without the format are not JSON
    const free = await generate(model, prompt, { parse: true, maxTokens: 30, temperature: 1, seed: 1 }).result;
    expect(() => JSON.parse(free.channels.final)).toThrow();
  });

  it("a new state's mask is computed on the worker, never on the event loop; on the engine a sequence that waits for one sits out steps and draws the same tokens, beside a plain one", async () => {
    // a schema no other test sends: every mask it needs is new
    const schema = { type: 'object', properties: { city: { enum: ['Oslo', 'Lima', 'Nairobi'] }, n: { type: 'integer' }, sea: { type: 'boolean' } }, required: ['city', 'n', 'sea'], additionalProperties: false };
    const format: ResponseFormat = { type: 'json_schema', schema };
    const before = { ...maskStats };
    const alone = await generate(model, prompt, { parse: true, maxTokens: 200, temperature: 1, seed: 5, responseFormat: format }).result;
    expect(alone.finishReason).toBe('stop');
    expect(Object.keys(JSON.parse(alone.channels.final) as object).sort()).toEqual(['city', 'n', 'sea']);
    const plain = await generate(model, prompt, { parse: true, maxTokens: 40, temperature: 1, seed: 6 }).result;
    const onWorker = maskStats.onWorker - before.onWorker;
    expect(onWorker).toBeGreaterThan(3);
    // the engine, with a plain sequence beside a structured one whose masks (of another end token: raw output) are all new
    const engine = model.createEngine({ maxSequences: 2, maxContext: 512 });
    const raw = tokenizer.encode('JSON:');
    const [p, q] = await Promise.all([
      engine.generate(prompt, { parse: true, maxTokens: 40, temperature: 1, seed: 6 }).result,
      engine.generate(raw, { maxTokens: 60, temperature: 0.8, seed: 7, responseFormat: format }).result,
    ]);
    await engine.close();
    expect(p.tokens).toEqual(plain.tokens);
    const q1 = await generate(model, raw, { maxTokens: 60, temperature: 0.8, seed: 7, responseFormat: format }).result;
    expect(q.tokens).toEqual(q1.tokens);
    expect(maskStats.onWorker - before.onWorker).toBeGreaterThan(onWorker);
    expect(maskStats.inline).toBe(before.inline);
  });

  it("json_object: any JSON object; a raw generation (parse: false) is held from its first token and ends with a stop token", async () => {
    const small = { type: 'json_schema' as const, schema: { type: 'object', properties: { v: { enum: [1, 2, 'x'] }, w: { type: 'boolean' } }, required: ['v', 'w'], additionalProperties: false } };
    const raw = await generate(model, tokenizer.encode('JSON:'), { maxTokens: 60, temperature: 0.8, seed: 9, responseFormat: small }).result;
    expect(raw.finishReason).toBe('stop');
    const v = JSON.parse(raw.text) as { v: unknown; w: unknown };
    expect([1, 2, 'x']).toContain(v.v);
    expect(typeof v.w).toBe('boolean');
    const obj = await generate(model, prompt, { parse: true, maxTokens: 40, temperature: 1, seed: 4, responseFormat: { type: 'json_object' } }).result;
    const text = obj.channels.final;
    expect(text.trimStart().startsWith('{')).toBe(true);
    if (obj.finishReason === 'stop') expect(typeof JSON.parse(text)).toBe('object');
    else expect(verdict({ type: 'object' }, text)).toBe('prefix');
  });

  it('a step backend that drops the masks: the generation ends in an error, never in unconstrained output', async () => {
    const inner = model.createBatchBackend({ kvBlocks: 64, blockSize: 16, maxSequences: 1 });
    const strip = (items: BatchItem[]): BatchItem[] => items.map(({ bias: _b, ...item }) => item);
    const backend: StepBackend = {
      blockSize: inner.blockSize,
      totalBlocks: inner.totalBlocks,
      freeBlocks: () => inner.freeBlocks(),
      open: (n, p) => inner.open(n, p),
      length: (seq) => inner.length(seq),
      close: (seq) => inner.close(seq),
      step: (items) => inner.step(strip(items)),
      stepLogprobs: (items) => inner.stepLogprobs(strip(items)),
      dispose: () => inner.dispose(),
    };
    const engine = model.createEngine({ backend, maxSequences: 1, maxContext: 512 });
    const r = await engine.generate(prompt, { parse: true, maxTokens: 20, temperature: 1, seed: 1, responseFormat: { type: 'json_object' } }).result;
    await engine.close();
    expect(r.finishReason).toBe('error');
    expect(r.error!.message).toMatch(/does not continue the response format; was the draw's mask applied\?/);
    expect(r.tokens).toHaveLength(1);
  });

  it("strict tools: a call's arguments parse and fit its parameters, then <|call|>; other functions stay free; the engine draws the same", async () => {
    const weather = { type: 'object', properties: { city: { enum: ['Oslo', 'Lima'] }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 14 }, note: { type: 'string', maxLength: 6 }, from: { type: 'string', format: 'date' } }, required: ['city', 'unit', 'days', 'from'], additionalProperties: false };
    const strictTools = { get_weather: weather, ping: null };
    const conversation = {
      developer: { tools: [{ name: 'get_weather', parameters: weather }, { name: 'ping' }, { name: 'free_text', parameters: { type: 'object' } }] },
      messages: [{ role: 'user' as const, content: 'Weather in Oslo?' }],
    };
    // the prompt ends inside a call's header (what tool_choice forces): the arguments are constrained from the first token
    const callTo = (name: string): number[] => [...renderConversation(conversation), ...tokenizer.encode(`<|channel|>commentary to=functions.${name} <|constrain|>json<|message|>`, { allowSpecial: 'all' })];
    const results = [];
    for (const seed of [1, 2, 3]) {
      const r = await generate(model, callTo('get_weather'), { parse: true, maxTokens: 120, temperature: 1, seed, strictTools }).result;
      expect(r.finishReason, `seed ${seed}`).toBe('tool-call');
      expect(r.stopToken).toBe(S.call);
      expect(r.toolCalls).toHaveLength(1);
      const args = r.toolCalls[0]!.arguments as Record<string, unknown>;
      expect(r.toolCalls[0]!.name).toBe('get_weather');
      expect(['Oslo', 'Lima']).toContain(args.city);
      expect(['c', 'f']).toContain(args.unit);
      expect(Object.keys(args).every((k) => ['city', 'unit', 'days', 'note', 'from'].includes(k))).toBe(true);
      expect(args.from, JSON.stringify(args)).toMatch(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/);
      expect(Number.isInteger(args.days) && (args.days as number) >= 1 && (args.days as number) <= 14, JSON.stringify(args)).toBe(true);
      if ('note' in args) expect([...(args.note as string)].length).toBeLessThanOrEqual(6);
      results.push(r);
    }
    const ping = await generate(model, callTo('ping'), { parse: true, maxTokens: 40, temperature: 1, seed: 4, strictTools }).result;
    expect(ping.finishReason).toBe('tool-call');
    expect(ping.toolCalls[0]!.arguments).toEqual({});
    const engine = model.createEngine({ maxSequences: 3, maxContext: 512 });
    const got = await Promise.all([1, 2, 3].map((seed) => engine.generate(callTo('get_weather'), { parse: true, maxTokens: 120, temperature: 1, seed, strictTools }).result));
    await engine.close();
    got.forEach((r, i) => expect(r.tokens).toEqual(results[i]!.tokens));
    // a function that is not strict: its arguments are whatever the weights draw (not JSON here)
    const free = await generate(model, callTo('free_text'), { parse: true, maxTokens: 30, temperature: 1, seed: 1, strictTools }).result;
    const call = free.messages.find((m) => m.recipient === 'functions.free_text');
    expect(call).toBeDefined();
    expect(() => JSON.parse(call!.content)).toThrow();
  });

  it("tool_choice 'required' with several tools: the name the model writes after to=functions. is one of them, then the strict call's arguments", async () => {
    const weather = { type: 'object', properties: { city: { enum: ['Oslo', 'Lima'] } }, required: ['city'], additionalProperties: false };
    const time = { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false };
    const names = ['get_weather', 'get_time', 'get'];
    const strictTools = { get_weather: weather, get_time: time, get: null };
    const conversation = {
      developer: { tools: [{ name: 'get_weather', parameters: weather }, { name: 'get_time', parameters: time }, { name: 'get' }] },
      messages: [{ role: 'user' as const, content: 'Weather and time in Oslo?' }],
    };
    const open = [...renderConversation(conversation), ...tokenizer.encode('<|channel|>commentary to=functions.', { allowSpecial: 'all' })];
    const results = [];
    for (const seed of [1, 2, 3, 4]) {
      const r = await generate(model, open, { parse: true, maxTokens: 80, temperature: 1, seed, strictTools, toolChoiceNames: names }).result;
      expect(r.finishReason, `seed ${seed}`).toBe('tool-call');
      const call = r.toolCalls[0]!;
      expect(names, JSON.stringify(call)).toContain(call.name);
      expect(call.arguments).toEqual(expect.any(Object));
      if (call.name === 'get') expect(call.arguments).toEqual({});
      else expect(Object.keys(call.arguments as object)).toEqual([call.name === 'get_weather' ? 'city' : 'zone']);
      results.push(r);
    }
    // without the names the same draws write no declared name
    const free = await generate(model, open, { parse: true, maxTokens: 12, temperature: 1, seed: 1 }).result;
    expect(free.messages.some((m) => names.some((n) => m.recipient === `functions.${n}`))).toBe(false);
    const engine = model.createEngine({ maxSequences: 4, maxContext: 512 });
    const got = await Promise.all([1, 2, 3, 4].map((seed) => engine.generate(open, { parse: true, maxTokens: 80, temperature: 1, seed, strictTools, toolChoiceNames: names }).result));
    await engine.close();
    got.forEach((r, i) => expect(r.tokens).toEqual(results[i]!.tokens));
    expect(() => generate(model, open, { parse: true, toolChoiceNames: [] })).toThrow(/toolChoiceNames must be a non-empty array/);
  });

  it('strict tools on a pipelined engine: steps are queued ahead until the call\'s <|message|> is drawn, then its draws come masked, one a step', async () => {
    // a scripted backend that pipelines (it takes `next`; a masked item after one is a plain step, as the native one's drop)
    class Piped extends ScriptedBackend {
      readonly pipelinesDecode = true;
      queuedAhead(): number {
        return 0; // nothing is really queued: each step runs as asked
      }
      readonly items: { next: boolean; masked: boolean }[] = [];
      override async step(items: BatchItem[]): Promise<Int32Array> {
        for (const it of items) if (it.sample) this.items.push({ next: it.next !== undefined, masked: it.bias?.allow !== undefined });
        return super.step(items);
      }
    }
    const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const reply = assistantReply;
    const think = reply({ role: 'assistant', channel: 'analysis', content: 'I call the weather tool for Paris.' }, S.end);
    const call = reply({ role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}' }, S.call);
    const script = [...think, S.start, ...tokenizer.encode('assistant'), ...call];
    const backend = new Piped(64, () => script);
    const engine = model.createEngine({ backend, maxSequences: 1, maxContext: 512 });
    const r = await engine.generate(tokenizer.encode('Weather?'), { parse: true, maxTokens: 200, temperature: 1, seed: 3, strictTools: { get_weather: weather } }).result;
    await engine.close();
    expect(r.finishReason).toBe('tool-call');
    expect(r.toolCalls[0]).toMatchObject({ name: 'get_weather', arguments: { city: 'Paris' } });
    const open = script.lastIndexOf(S.message) + 1; // the first draw of the arguments
    expect(backend.items).toHaveLength(script.length);
    // the decode draws before the arguments (1 .. open - 1, the last of them <|message|>) ask for their next step; the
    // arguments' draws are masked and never ask
    backend.items.forEach((it, k) => expect([k, it.masked, it.next]).toEqual([k, k >= open, k >= 1 && k < open]));
  });

  it('bad formats are refused before anything runs', () => {
    expect(() => generate(model, prompt, { parse: true, strictTools: { f: { type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } } } })).toThrow(/options.strictTools.f: .*'not' is not supported/);
    expect(() => generate(model, prompt, { parse: false, strictTools: { f: null } })).toThrow(/options.strictTools needs parse: true/);
    expect(() => generate(model, prompt, { parse: true, strictTools: [] as never })).toThrow(/options.strictTools must be an object/);
    expect(() => generate(model, prompt, { responseFormat: { type: 'json_schema', schema: { type: 'number', multipleOf: 3 } } })).toThrow(/options.responseFormat.schema: #: the keyword 'multipleOf' is not supported/);
    expect(() => generate(model, prompt, { responseFormat: { type: 'yaml' } as never })).toThrow(/responseFormat.type must be 'text', 'json_object' or 'json_schema'/);
    expect(() => generate(model, prompt, { responseFormat: { type: 'json_schema' } as never })).toThrow(/schema is missing/);
  });
});
