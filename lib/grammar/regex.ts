// JSON Schema's `pattern` (and the `format`s it can spell) as an automaton over code points, for the byte-level
// matcher (json-schema.ts): a string held to a pattern reads its code points through it, and may close only where
// the pattern matches. The subset is the regular part of ECMA-262 regular expressions: literals and escapes, `.`,
// \d \D \w \W \s \S, bracket classes with ranges and negation, groups ( ) and (?: ), alternation, the quantifiers
// ? * + {n} {n,} {n,m} (a trailing ? of a lazy one changes nothing here), and ^ / $ at the pattern's ends. As JSON
// Schema has it, a pattern is not anchored: without ^ it may match after any prefix, without $ anything may follow.
// Anything else (backreferences, lookaround, \b, \p{...}, ^ or $ inside) is refused with a RegexError naming it.
//
// The automaton is a Thompson NFA whose states that can no longer reach acceptance are pruned; a matcher state holds
// the set of NFA states it is in, kept sorted (its key).

export class RegexError extends Error {}

/** A set of code points: inclusive ranges, or everything but them. */
interface CharSet {
  ranges: [number, number][];
  negated: boolean;
}

const inSet = (c: CharSet, cp: number): boolean => c.ranges.some(([lo, hi]) => cp >= lo && cp <= hi) !== c.negated;

const DIGIT: [number, number][] = [[0x30, 0x39]];
const WORD: [number, number][] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
// ECMA-262's WhiteSpace and LineTerminator
const SPACE: [number, number][] = [
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f],
  [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
];
const ANY_BUT_NEWLINE: CharSet = { ranges: [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]], negated: true };
const ANYTHING: CharSet = { ranges: [], negated: true };

type Node =
  | { k: 'set'; set: CharSet }
  | { k: 'seq'; items: Node[] }
  | { k: 'alt'; options: Node[] }
  | { k: 'rep'; node: Node; min: number; max: number };

/** Most repetitions a bounded quantifier may ask for (its states are unrolled). */
const MAX_REPEAT = 256;

function parse(src: string): { node: Node; start: boolean; end: boolean } {
  let i = 0;
  const fail = (what: string): never => {
    throw new RegexError(`pattern ${JSON.stringify(src)}: ${what} at offset ${i} is not supported`);
  };
  const cps = Array.from(src); // code points
  const peek = (): string | undefined => cps[i];
  const start = peek() === '^';
  if (start) i++;
  let end = false;

  const escapeSet = (c: string): CharSet | null => {
    switch (c) {
      case 'd': return { ranges: DIGIT, negated: false };
      case 'D': return { ranges: DIGIT, negated: true };
      case 'w': return { ranges: WORD, negated: false };
      case 'W': return { ranges: WORD, negated: true };
      case 's': return { ranges: SPACE, negated: false };
      case 'S': return { ranges: SPACE, negated: true };
      default: return null;
    }
  };
  // an escaped single code point (\n, \t, \x41, \u0041, \. ...)
  const escapeChar = (): number => {
    const c = cps[i++];
    if (c === undefined) return fail('a trailing backslash');
    const simple: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b, f: 0x0c, '0': 0 };
    if (c in simple) return simple[c]!;
    if (c === 'x' || c === 'u') {
      const n = c === 'x' ? 2 : 4;
      const hex = cps.slice(i, i + n).join('');
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return fail(`\\${c} without ${n} hex digits`);
      i += n;
      return parseInt(hex, 16);
    }
    if (/[0-9]/.test(c)) return fail(`the backreference \\${c}`);
    if (/[a-zA-Z]/.test(c)) return fail(`the escape \\${c}`);
    return c.codePointAt(0)!;
  };
  const bracket = (): CharSet => {
    // after '['
    const negated = peek() === '^';
    if (negated) i++;
    const ranges: [number, number][] = [];
    let first = true;
    for (;;) {
      const c = cps[i];
      if (c === undefined) return fail('an unclosed [');
      if (c === ']' && !first) {
        i++;
        break;
      }
      first = false;
      let lo: number;
      if (c === '\\') {
        i++;
        const set = cps[i] !== undefined ? escapeSet(cps[i]!) : null;
        if (set) {
          i++;
          if (set.negated) return fail(`\\${cps[i - 1]} inside a bracket`);
          ranges.push(...set.ranges);
          continue;
        }
        lo = cps[i] === 'b' ? (i++, 0x08) : escapeChar();
      } else {
        i++;
        lo = c.codePointAt(0)!;
      }
      if (peek() === '-' && cps[i + 1] !== undefined && cps[i + 1] !== ']') {
        i++;
        let hi: number;
        if (peek() === '\\') {
          i++;
          if (cps[i] !== undefined && escapeSet(cps[i]!)) return fail('a class as a range end');
          hi = escapeChar();
        } else hi = cps[i++]!.codePointAt(0)!;
        if (hi < lo) return fail('a range out of order');
        ranges.push([lo, hi]);
      } else ranges.push([lo, lo]);
    }
    return { ranges, negated };
  };
  const atom = (): Node => {
    const c = cps[i]!;
    if (c === '(') {
      i++;
      if (peek() === '?') {
        if (cps[i + 1] !== ':') return fail('a lookaround or named group');
        i += 2;
      }
      const inner = alternation();
      if (peek() !== ')') return fail('an unclosed (');
      i++;
      return inner;
    }
    if (c === '[') {
      i++;
      return { k: 'set', set: bracket() };
    }
    if (c === '.') {
      i++;
      return { k: 'set', set: ANY_BUT_NEWLINE };
    }
    if (c === '\\') {
      i++;
      const set = cps[i] !== undefined ? escapeSet(cps[i]!) : null;
      if (set) {
        i++;
        return { k: 'set', set };
      }
      if (cps[i] === 'b' || cps[i] === 'B') return fail('a word boundary');
      const cp = escapeChar();
      return { k: 'set', set: { ranges: [[cp, cp]], negated: false } };
    }
    if (c === '^' || c === '$') return fail(`${c} inside the pattern`);
    if ('*+?{'.includes(c)) return fail(`a quantifier ${c} with nothing before it`);
    i++;
    const cp = c.codePointAt(0)!;
    return { k: 'set', set: { ranges: [[cp, cp]], negated: false } };
  };
  const quantified = (): Node => {
    let node = atom();
    for (;;) {
      const c = peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(cps.slice(i).join(''));
        if (!m) return fail('a { that is not a quantifier');
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (max < min) return fail('a quantifier {n,m} with m < n');
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) return fail(`a quantifier above ${MAX_REPEAT}`);
        i += Array.from(m[0]).length - 1;
      } else return node;
      i++;
      if (peek() === '?') i++; // lazy: the same language
      node = { k: 'rep', node, min, max };
    }
  };
  const sequence = (): Node => {
    const items: Node[] = [];
    for (;;) {
      const c = peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '$' && i === cps.length - 1) {
        end = true;
        i++;
        break;
      }
      items.push(quantified());
    }
    return { k: 'seq', items };
  };
  function alternation(): Node {
    const options = [sequence()];
    while (peek() === '|') {
      i++;
      options.push(sequence());
    }
    return options.length === 1 ? options[0]! : { k: 'alt', options };
  }
  const node = alternation();
  if (i < cps.length) fail(`an unmatched ${cps[i]}`);
  return { node, start, end };
}

/** A compiled pattern: NFA states with their code-point edges and epsilon moves, pruned to those that can match. */
export interface Regex {
  readonly source: string;
  readonly edges: { set: CharSet; to: number }[][];
  readonly eps: number[][];
  readonly accept: number;
  /** The closure of the start state (sorted). */
  readonly initial: readonly number[];
  /** States from which acceptance is still reachable. */
  readonly live: Uint8Array;
}

/** Compiles a pattern (RegexError for what it does not support), for code points. */
export function compileRegex(source: string): Regex {
  const { node, start, end } = parse(source);
  const edges: { set: CharSet; to: number }[][] = [];
  const eps: number[][] = [];
  const state = (): number => {
    edges.push([]);
    eps.push([]);
    return edges.length - 1;
  };
  // build(node, from) -> the state after it
  const build = (n: Node, from: number): number => {
    if (edges.length > 20000) throw new RegexError(`pattern ${JSON.stringify(source)}: too large (more than 20,000 states)`);
    switch (n.k) {
      case 'set': {
        const to = state();
        edges[from]!.push({ set: n.set, to });
        return to;
      }
      case 'seq': {
        let at = from;
        for (const item of n.items) at = build(item, at);
        return at;
      }
      case 'alt': {
        const out = state();
        for (const o of n.options) {
          const s = state();
          eps[from]!.push(s);
          eps[build(o, s)]!.push(out);
        }
        return out;
      }
      case 'rep': {
        let at = from;
        for (let k = 0; k < n.min; k++) at = build(n.node, at);
        if (n.max === Infinity) {
          const loop = state();
          eps[at]!.push(loop);
          eps[build(n.node, loop)]!.push(loop);
          return loop;
        }
        const out = state();
        eps[at]!.push(out);
        for (let k = n.min; k < n.max; k++) {
          at = build(n.node, at);
          eps[at]!.push(out);
        }
        return out;
      }
    }
  };
  const begin = state();
  if (!start) edges[begin]!.push({ set: ANYTHING, to: begin }); // not anchored: any prefix
  const accept = build(node, begin);
  if (!end) edges[accept]!.push({ set: ANYTHING, to: accept }); // anything may follow
  // live: states from which accept is reachable (over any edge)
  const n = edges.length;
  const back: number[][] = Array.from({ length: n }, () => []);
  for (let s = 0; s < n; s++) {
    for (const e of edges[s]!) back[e.to]!.push(s);
    for (const t of eps[s]!) back[t]!.push(s);
  }
  const live = new Uint8Array(n);
  const todo = [accept];
  live[accept] = 1;
  while (todo.length > 0) for (const p of back[todo.pop()!]!) if (!live[p]) (live[p] = 1), todo.push(p);
  const re: Regex = { source, edges, eps, accept, initial: [], live };
  (re as { initial: readonly number[] }).initial = intern(re, closure(re, [begin]));
  if (re.initial.length === 0) throw new RegexError(`pattern ${JSON.stringify(source)} matches nothing`);
  return re;
}

/** The live states reachable from `from` by epsilon moves, sorted. */
function closure(re: Regex, from: readonly number[]): number[] {
  const seen = new Set<number>();
  const todo = [...from];
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const t of re.eps[s]!) todo.push(t);
  }
  return [...seen].filter((s) => re.live[s]).sort((a, b) => a - b);
}

// Sets are interned per pattern (one array a distinct set), and each one's moves are cached by code point: a token
// mask's walk takes the same few moves hundreds of thousands of times.
const interned = new WeakMap<Regex, Map<string, readonly number[]>>();
const moves = new WeakMap<readonly number[], Map<number, readonly number[]>>();
const EMPTY: readonly number[] = Object.freeze([]);
/** Moves cached a set (the code points a vocabulary walk meets are many; memory stays bounded). */
const MAX_CACHED_MOVES = 4096;

function intern(re: Regex, set: readonly number[]): readonly number[] {
  let table = interned.get(re);
  if (!table) interned.set(re, (table = new Map()));
  const key = set.join(',');
  let got = table.get(key);
  if (!got) table.set(key, (got = Object.freeze([...set])));
  return got;
}

/** The states after one code point (empty: no match can go on from here); the same array for the same set. */
export function regexStep(re: Regex, set: readonly number[], cp: number): readonly number[] {
  let cache = moves.get(set);
  if (!cache) moves.set(set, (cache = new Map()));
  let out = cache.get(cp);
  if (out) return out;
  const next: number[] = [];
  for (const s of set) for (const e of re.edges[s]!) if (inSet(e.set, cp)) next.push(e.to);
  out = next.length === 0 ? EMPTY : intern(re, closure(re, next));
  if (cache.size < MAX_CACHED_MOVES) cache.set(cp, out);
  return out;
}

/** Whether some code point in [lo, hi] can be read next (a partial UTF-8 character or \\u escape narrows it). */
export function regexCanTake(re: Regex, set: readonly number[], lo: number, hi: number): boolean {
  for (const s of set) for (const e of re.edges[s]!) if (intersects(e.set, lo, hi)) return true;
  return false;
}

function intersects(c: CharSet, lo: number, hi: number): boolean {
  if (!c.negated) return c.ranges.some(([a, b]) => a <= hi && b >= lo);
  // negated: [lo, hi] is not wholly inside the excluded ranges
  let at = lo;
  for (const [a, b] of [...c.ranges].sort((x, y) => x[0] - y[0])) {
    if (a > at) break;
    if (b >= at) at = b + 1;
    if (at > hi) return false;
  }
  return at <= hi;
}

/** Whether the code points read so far match. */
export const regexAccepts = (re: Regex, set: readonly number[]): boolean => set.includes(re.accept);

/** The patterns of the `format`s held exactly (RFC 3339 date, time and date-time, a UUID, an IPv4 address). */
export const FORMAT_PATTERNS: Readonly<Record<string, string>> = {
  date: '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$',
  time: '^([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?([zZ]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$',
  'date-time':
    '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])[tT]([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?([zZ]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$',
  uuid: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  ipv4: '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$',
};
