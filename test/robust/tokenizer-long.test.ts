// Long regex pieces (issue 16, finding 3) go through a heap-driven BPE merge instead of
// gpt-tokenizer's quadratic loop; the tokens must be exactly gpt-tokenizer's o200k_harmony ones.
import { encode as upstream } from 'gpt-tokenizer/encoding/o200k_harmony';
import { describe, expect, it } from 'vitest';
import { tokenizer } from '../../lib/tokenizer.js';
import { rng } from '../helpers/rng.js';

const same = (text: string): void => {
  const ours = tokenizer.encode(text);
  const theirs = upstream(text, { disallowedSpecial: new Set() });
  expect(ours.length).toBe(theirs.length);
  expect(ours).toEqual(theirs);
  expect(tokenizer.decode(ours)).toBe(text.replace(/[\ud800-\udfff]/g, (c, i: number) => {
    // lone surrogates decode as U+FFFD; paired ones are kept
    const code = text.charCodeAt(i);
    const pairOk = code < 0xdc00 ? /[\udc00-\udfff]/.test(text[i + 1] ?? '') : /[\ud800-\udbff]/.test(text[i - 1] ?? '');
    return pairOk ? c : '\ufffd';
  }));
};

describe('long pieces encode as gpt-tokenizer does', () => {
  const r = rng(16, 'tokenizer-long');
  const rand = (): number => r.nextFloat();
  const word = (n: number, alphabet: string): string => Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
  const cases: [string, string][] = [
    ['3000 spaces', ' '.repeat(3000)],
    ['spaces between words', 'x' + ' '.repeat(2001) + 'y'],
    ['a run of one letter', 'a'.repeat(2000)],
    ['random lowercase word', word(3000, 'abcdefghijklmnopqrstuvwxyz')],
    ['random mixed-case word', word(1500, 'aAbBcCdDeEfF')],
    ['CJK run', word(1200, '漢字仮名交じり文')],
    ['emoji run', '😀'.repeat(800)],
    ['lone surrogates', '\ud800'.repeat(700)],
    ['digits and dots', '1'.repeat(1000) + '....'.repeat(300)],
    ['newlines', '\n'.repeat(1500) + 'end'],
    ['punctuation', word(2500, '!?.,;:-_/*')],
    ['ordinary text around a long piece', 'Hello, world. ' + '='.repeat(1200) + ' Goodbye!\n'],
  ];
  it.each(cases)('%s', (_name, text) => same(text));

  it('random text with long runs mixed in', () => {
    for (let k = 0; k < 5; k++) {
      let t = '';
      while (t.length < 5000) t += rand() < 0.1 ? ' '.repeat(501 + Math.floor(rand() * 900)) : word(1 + Math.floor(rand() * 12), 'ab cd\nEé1.') + ' ';
      same(t);
    }
  });

  it('inputs that took seconds to minutes finish (timing is in bench/tokenizer-long.mjs)', () => {
    expect(tokenizer.encode(' '.repeat(1e5)).length).toBe(782);
    expect(tokenizer.encode('\ud800'.repeat(1e5)).length).toBe(12500);
    expect(tokenizer.decode(tokenizer.encode('😀'.repeat(3e4)))).toBe('😀'.repeat(3e4));
  });
});
