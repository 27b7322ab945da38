// JSON and JSON Schema as a byte-level matcher: structured outputs (OpenAI's response_format json_object /
// json_schema). A schema is compiled to nodes; the matcher reads the output one byte at a time and says
// whether what it has read can still be extended to a document the schema accepts, and whether it is
// one already. Its states are immutable (a transition returns a new state), so the token masks
// (lib/grammar/token-mask.ts) can walk the vocabulary's bytes from any state and share prefixes.
//
// The schema subset (what strict structured outputs use): type (one or a list of distinct kinds),
// object with properties / required / additionalProperties (false, true or absent, or a schema), array
// with items / minItems / maxItems, string with minLength / maxLength (code points) or pattern (regex.ts's
// subset) or a format held exactly (date, time, date-time, uuid, ipv4; any other format is an annotation, as
// JSON Schema 2020-12 has it by default), number and integer with minimum / maximum / exclusiveMinimum /
// exclusiveMaximum (a bounded number is written without an exponent), boolean, null, enum and const of any
// JSON values, anyOf / oneOf whose branches start differently (distinct kinds: a string or null, ...), allOf of
// one schema, $ref to
// #/$defs/... or #/definitions/... (recursion allowed), and the annotation keywords (description, title,
// default, examples, $schema, $id, $comment). Lenient mode (strict tools) skips the keywords that only narrow
// values (multipleOf, uniqueItems, minProperties, maxProperties) and a pattern it cannot hold. Anything else
// is refused (SchemaError naming the keyword and where it is), never ignored. Properties may come in any
// order, each once (property names are written without escapes); numbers have at most 16 digits before the point, 16 after it and 3 in the
// exponent, so that output ends. Texts the matcher compares (names, enum values) are kept as their UTF-8
// bytes, one char a byte.

import { compileRegex, FORMAT_PATTERNS, regexAccepts, regexCanTake, RegexError, regexStep, type Regex } from './regex.js';

export class SchemaError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

type Kind = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** A compiled schema node. */
export type SchemaNode =
  | { t: 'any' }
  | { t: 'kinds'; kinds: Kind[]; object?: ObjectSpec; array?: ArraySpec; range?: NumRange; length?: LengthSpec; pattern?: Regex }
  | { t: 'literals'; texts: string[] } // enum / const: the values as JSON texts (compact)
  | { t: 'ref'; target: () => SchemaNode };

interface ObjectSpec {
  props: Map<string, SchemaNode>;
  required: Set<string>;
  /** Schema of keys not in props; null: none allowed. */
  extra: SchemaNode | null;
}
/**
 * A number's bounds, inclusive, in units of 10^-16 (the finest a number here can be: at most 16 digits after the
 * point), null: unbounded on that side. Exclusive bounds are one unit inside; an integer's are whole.
 */
interface NumRange {
  lo: bigint | null;
  hi: bigint | null;
}
/** A string's length bounds in code points (an escape counts one). */
interface LengthSpec {
  min: number;
  max: number;
}
interface ArraySpec {
  items: SchemaNode;
  min: number;
  max: number;
}

const ANY: SchemaNode = { t: 'any' };
const PENDING: SchemaNode = { t: 'any' }; // a definition being compiled
/** A string's UTF-8 bytes as a string of one char a byte (what the matcher compares). */
const bytesOf = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const ALL_KINDS: Kind[] = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];
// format is an annotation, as JSON Schema 2020-12 has it by default (date-time, email, uri, ...: not enforced)
const ANNOTATIONS = new Set(['description', 'title', 'default', 'examples', '$schema', '$id', '$comment', 'strict', 'name', 'deprecated', 'readOnly', 'writeOnly']);
/**
 * Keywords that only narrow the values a structure accepts, skipped in lenient mode (a strict tool's parameters: the
 * call is held to the schema's structure and the rest of it, where these would otherwise refuse the whole schema).
 */
const NARROWING = new Set(['multipleOf', 'uniqueItems', 'minProperties', 'maxProperties', 'contentEncoding', 'contentMediaType']);

export interface CompileOptions {
  /** Skip the keywords that only narrow values (pattern, multipleOf, ...) instead of refusing the schema. */
  lenient?: boolean;
}

/** Compiles a JSON schema (an object; `true` / {} accept anything). Throws SchemaError on what it does not support. */
export function compileSchema(schema: unknown, options: CompileOptions = {}): SchemaNode {
  const root = schema;
  const skip = (key: string): boolean => ANNOTATIONS.has(key) || (options.lenient === true && NARROWING.has(key));
  const defs = new Map<string, SchemaNode>();
  const compile = (s: unknown, at: string): SchemaNode => {
    if (s === true) return ANY;
    if (s === false) throw new SchemaError(`${at}: the schema false accepts nothing`);
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new SchemaError(`${at}: a schema must be an object or true`);
    const o = s as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (skip(key)) continue;
      if (!['type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref', '$defs', 'definitions', ...NUMBER_KEYWORDS, 'minLength', 'maxLength', 'pattern', 'format'].includes(key))
        throw new SchemaError(`${at}: the keyword '${key}' is not supported`);
    }
    if (o.$ref !== undefined) {
      if (Object.keys(o).some((k) => !skip(k) && k !== '$ref' && k !== '$defs' && k !== 'definitions'))
        throw new SchemaError(`${at}: $ref with other keywords beside it is not supported`);
      const ref = o.$ref;
      const m = typeof ref === 'string' ? /^#\/(\$defs|definitions)\/(.+)$/.exec(ref) : null;
      if (!m) throw new SchemaError(`${at}.$ref: only '#/$defs/name' and '#/definitions/name' are supported, got ${JSON.stringify(ref)}`);
      const name = `${m[1]}/${m[2]}`;
      const table = (root as Record<string, unknown>)[m[1]!] as Record<string, unknown> | undefined;
      if (!table || typeof table !== 'object' || !(m[2]! in table)) throw new SchemaError(`${at}.$ref: ${ref} is not defined`);
      return {
        t: 'ref',
        target: () => {
          let node = defs.get(name);
          if (!node) {
            defs.set(name, PENDING); // a cycle back here while it compiles: only an anyOf would look inside (and refuses)
            node = compile(table[m[2]!], `#/${name}`);
            defs.set(name, node);
          }
          return node;
        },
      };
    }
    if (o.const !== undefined) return { t: 'literals', texts: [bytesOf(JSON.stringify(o.const))] };
    if (o.enum !== undefined) {
      if (!Array.isArray(o.enum) || o.enum.length === 0) throw new SchemaError(`${at}.enum must be a non-empty array`);
      return { t: 'literals', texts: [...new Set(o.enum.map((v) => bytesOf(JSON.stringify(v))))] };
    }
    if (o.allOf !== undefined) {
      // one schema (what generators write to put a description beside a $ref): that schema
      if (!Array.isArray(o.allOf) || o.allOf.length !== 1) throw new SchemaError(`${at}.allOf: only an allOf of one schema is supported`);
      if (Object.keys(o).some((k) => !skip(k) && k !== 'allOf' && k !== '$defs' && k !== 'definitions'))
        throw new SchemaError(`${at}: allOf with other keywords beside it is not supported`);
      return compile(o.allOf[0], `${at}.allOf[0]`);
    }
    for (const word of ['anyOf', 'oneOf'] as const) {
      const list = o[word];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) throw new SchemaError(`${at}.${word} must be a non-empty array`);
      if (Object.keys(o).some((k) => !skip(k) && k !== word && k !== '$defs' && k !== 'definitions'))
        throw new SchemaError(`${at}: ${word} with other keywords beside it is not supported`);
      const branches = list.map((b, i) => compile(b, `${at}.${word}[${i}]`));
      // branches that start differently never both match a document, so oneOf is anyOf here (a value two literal
      // branches list, or a branch that accepts anything beside others, would match twice: refused)
      return mergeBranches(branches, at, word);
    }
    let kinds: Kind[];
    if (o.type === undefined) kinds = o.properties !== undefined ? ['object'] : o.items !== undefined ? ['array'] : [...ALL_KINDS];
    else {
      const list = Array.isArray(o.type) ? o.type : [o.type];
      for (const k of list) if (!ALL_KINDS.includes(k as Kind)) throw new SchemaError(`${at}.type: '${String(k)}' is not a JSON schema type`);
      kinds = [...new Set(list as Kind[])];
    }
    const node: SchemaNode & { t: 'kinds' } = { t: 'kinds', kinds };
    if (kinds.includes('object')) {
      const props = new Map<string, SchemaNode>();
      const p = o.properties ?? {};
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new SchemaError(`${at}.properties must be an object`);
      for (const [name, sub] of Object.entries(p)) {
        if (/[\u0000-\u001f"\\]/.test(name)) throw new SchemaError(`${at}.properties: the name ${JSON.stringify(name)} needs escapes, which are not supported`);
        props.set(bytesOf(name), compile(sub, `${at}.properties.${name}`));
      }
      const req = o.required ?? [];
      if (!Array.isArray(req) || req.some((r) => typeof r !== 'string')) throw new SchemaError(`${at}.required must be an array of names`);
      for (const r of req as string[]) if (!props.has(bytesOf(r))) throw new SchemaError(`${at}.required: '${r}' is not among the properties`);
      const ap = o.additionalProperties;
      const extra = ap === false ? null : ap === undefined || ap === true ? ANY : compile(ap, `${at}.additionalProperties`);
      node.object = { props, required: new Set((req as string[]).map(bytesOf)), extra };
    }
    if (kinds.includes('array')) {
      const min = o.minItems ?? 0;
      const max = o.maxItems ?? Infinity;
      if (!Number.isSafeInteger(min) || (min as number) < 0) throw new SchemaError(`${at}.minItems must be an integer >= 0`);
      if (max !== Infinity && (!Number.isSafeInteger(max) || (max as number) < (min as number))) throw new SchemaError(`${at}.maxItems must be an integer >= minItems`);
      node.array = { items: o.items === undefined ? ANY : compile(o.items, `${at}.items`), min: min as number, max: max as number };
    }
    if ((kinds.includes('number') || kinds.includes('integer')) && NUMBER_KEYWORDS.some((k) => o[k] !== undefined)) {
      const range = numberRange(o, !kinds.includes('number'), at);
      if (range) node.range = range;
    }
    if (kinds.includes('string') && (o.minLength !== undefined || o.maxLength !== undefined)) {
      const min = o.minLength ?? 0;
      const max = o.maxLength ?? Infinity;
      if (!Number.isSafeInteger(min) || (min as number) < 0) throw new SchemaError(`${at}.minLength must be an integer >= 0`);
      if (max !== Infinity && (!Number.isSafeInteger(max) || (max as number) < (min as number))) throw new SchemaError(`${at}.maxLength must be an integer >= minLength`);
      if (min !== 0 || max !== Infinity) node.length = { min: min as number, max: max as number };
    }
    if (kinds.includes('string')) {
      // pattern, or a format held exactly (FORMAT_PATTERNS; any other format is an annotation, as JSON Schema 2020-12
      // has it by default). Lenient mode (a strict tool) skips a pattern it cannot hold instead of refusing it.
      if (o.pattern !== undefined && typeof o.pattern !== 'string') throw new SchemaError(`${at}.pattern must be a string`);
      const pattern = o.pattern as string | undefined;
      const format = typeof o.format === 'string' ? FORMAT_PATTERNS[o.format] : undefined;
      const source = pattern ?? format;
      const what = pattern !== undefined ? 'pattern' : `format '${String(o.format)}'`;
      let problem: string | null = null;
      if (source === undefined) problem = null;
      else if (pattern !== undefined && format !== undefined) problem = `${at}: pattern and format '${String(o.format)}' together are not supported`;
      else if (node.length) problem = `${at}: minLength / maxLength beside ${what} are not supported`;
      else {
        try {
          node.pattern = compileRegex(source);
        } catch (e) {
          if (!(e instanceof RegexError)) throw e;
          problem = `${at}.${pattern !== undefined ? 'pattern' : 'format'}: ${e.message}`;
        }
      }
      if (problem !== null && options.lenient !== true) throw new SchemaError(problem);
    }
    return node;
  };
  const node = compile(schema, '#');
  // resolve every $ref once now, so that an undefined or unsupported definition fails here, not mid-generation
  const seen = new Set<SchemaNode>();
  const visit = (n: SchemaNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n.t === 'ref') visit(n.target());
    else if (n.t === 'kinds') {
      if (n.object) {
        for (const v of n.object.props.values()) visit(v);
        if (n.object.extra) visit(n.object.extra);
      }
      if (n.array) visit(n.array.items);
    }
  };
  visit(node);
  return node;
}

const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const;
/** 10^16: a number's value in units of its finest digit (16 after the point). */
const UNIT = 10n ** 16n;

/** A JSON number (a JS number's shortest text) in units of 10^-16, rounded up or down when finer. */
function scaled(x: number, up: boolean): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(x))!;
  const digits = BigInt(m[2]! + (m[3] ?? ''));
  const shift = 16 + Number(m[4] ?? 0) - (m[3]?.length ?? 0);
  let v: bigint;
  if (shift >= 0) v = digits * 10n ** BigInt(shift);
  else {
    const d = 10n ** BigInt(-shift);
    const neg = m[1] === '-';
    // |x| = digits / d: toward +infinity when up, toward -infinity otherwise
    v = digits / d + (digits % d !== 0n && up !== neg ? 1n : 0n);
  }
  return m[1] === '-' ? -v : v;
}

function numberRange(o: Record<string, unknown>, integer: boolean, at: string): NumRange | null {
  for (const k of NUMBER_KEYWORDS)
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k])))
      throw new SchemaError(`${at}.${k} must be a number${typeof o[k] === 'boolean' ? ' (the draft-4 boolean form is not supported)' : ''}`);
  const bound = (incl: unknown, excl: unknown, low: boolean): bigint | null => {
    const cands: bigint[] = [];
    if (typeof incl === 'number') cands.push(scaled(incl, low));
    if (typeof excl === 'number') {
      const v = scaled(excl, low);
      // one unit inside, unless rounding already moved it inside (a bound finer than 10^-16)
      cands.push(low ? (scaled(excl, false) === v ? v + 1n : v) : scaled(excl, true) === v ? v - 1n : v);
    }
    if (cands.length === 0) return null;
    let v = cands.reduce((a, b) => (low ? (a > b ? a : b) : a < b ? a : b));
    if (integer) {
      // whole numbers only: the first / last whole number inside
      const r = ((v % UNIT) + UNIT) % UNIT;
      if (r !== 0n) v = low ? v - r + UNIT : v - r;
    }
    return v;
  };
  const lo = bound(o.minimum, o.exclusiveMinimum, true);
  const hi = bound(o.maximum, o.exclusiveMaximum, false);
  if (lo !== null && hi !== null && lo > hi) throw new SchemaError(`${at}: no ${integer ? 'integer' : 'number'} is within its minimum and maximum`);
  return lo === null && hi === null ? null : { lo, hi };
}

/** anyOf as one node: branches must start with different bytes (distinct kinds, literals of their own). */
function mergeBranches(branches: SchemaNode[], at: string, word: 'anyOf' | 'oneOf' = 'anyOf'): SchemaNode {
  if (branches.length === 1) return branches[0]!;
  const merged: SchemaNode & { t: 'kinds' } = { t: 'kinds', kinds: [] };
  const literals: string[] = [];
  for (const b0 of branches) {
    let b = b0;
    while (b.t === 'ref') b = b.target();
    if (b === PENDING) throw new SchemaError(`${at}.${word}: a branch refers back to the definition that holds it; not supported`);
    if (b.t === 'any') {
      if (word === 'oneOf') throw new SchemaError(`${at}.oneOf: a branch accepts anything, so a value would match it and another`);
      return ANY;
    }
    if (b.t === 'literals') {
      if (word === 'oneOf') for (const t of b.texts) if (literals.includes(t)) throw new SchemaError(`${at}.oneOf: the value ${Buffer.from(t, 'latin1').toString('utf8')} is in two branches (it would match both)`);
      literals.push(...b.texts);
      continue;
    }
    for (const k of b.kinds) {
      if (merged.kinds.includes(k) || (k === 'integer' && merged.kinds.includes('number')) || (k === 'number' && merged.kinds.includes('integer')))
        throw new SchemaError(`${at}.${word}: two branches accept ${k === 'integer' ? 'numbers' : `${k}s`}; only branches of different types are supported`);
      merged.kinds.push(k);
    }
    if (b.object) merged.object = b.object;
    if (b.array) merged.array = b.array;
    if (b.range) merged.range = b.range;
    if (b.length) merged.length = b.length;
  }
  if (literals.length > 0) {
    if (merged.kinds.length > 0) throw new SchemaError(`${at}.${word}: enum or const beside typed branches is not supported`);
    return { t: 'literals', texts: [...new Set(literals)] };
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// The matcher. A state is a stack of frames (a linked list: frames are never changed, only replaced).
// ---------------------------------------------------------------------------------------------

type Frame =
  | { f: 'value'; node: SchemaNode } // a value expected (whitespace before it allowed)
  // in a string; esc: 0 none, 1 after \\, 2-5 \\u digits left + 1. A property name (key not null: its bytes so far)
  // has no escapes; names: the names it may still become (null: any)
  // A checked string (minLength / maxLength: limit and len, its code points so far; or a pattern: re and set, the
  // automaton's states) reads code points, valid UTF-8 and decoded escapes: cont is the UTF-8 continuation bytes its
  // character still needs (of need in all), acc the bits read of it (or of a \\u escape's hex digits).
  | {
      f: 'string';
      esc: number;
      key: string | null;
      names: string[] | null;
      len?: number;
      cont?: number;
      need?: number;
      acc?: number;
      limit?: LengthSpec;
      re?: Regex;
      set?: readonly number[];
    }
  // text / range: the number's bytes so far and its bounds (a bounded number only)
  | { f: 'number'; phase: number; digits: number; integer: boolean; text?: string; range?: NumRange }
  | { f: 'literals'; texts: string[]; pos: number }
  | { f: 'object'; spec: ObjectSpec; phase: number; seen: string[]; key: string }
  | { f: 'array'; spec: ArraySpec; phase: number; count: number };

interface Stack {
  top: Frame;
  rest: Stack | null;
}

/**
 * A matcher state: its stack (null once the document is complete: only end of input, or whitespace, may follow)
 * and the whitespace bytes just read outside strings (at most MAX_WS in a row, so that output cannot idle).
 */
export interface MatchState {
  stack: Stack | null;
  ws?: number;
}

/** Most whitespace bytes in a row between tokens of the document (a newline and an indentation). */
export const MAX_WS = 24;

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const MAX_INT_DIGITS = 16;
const MAX_FRAC_DIGITS = 16;
const MAX_EXP_DIGITS = 3;

export function initialState(node: SchemaNode): MatchState {
  return { stack: { top: { f: 'value', node }, rest: null } };
}

/**
 * A state that reads exactly one of `texts` (raw UTF-8, not JSON: a tool's name in a call's header), with no
 * whitespace before it; after it only whitespace, as after a document.
 */
export function oneOfTextsState(texts: readonly string[]): MatchState {
  if (texts.length === 0 || texts.some((t) => t === '')) throw new SchemaError('oneOfTextsState: the texts must be non-empty');
  return { stack: { top: { f: 'literals', texts: [...new Set(texts.map(bytesOf))], pos: 0 }, rest: null } };
}

const push = (s: Stack | null, top: Frame): Stack => ({ top, rest: s });

/** Number phases: 0 after '-', 1 in the integer part (first digit not 0), 2 after a leading 0, 3 after '.', 4 in the fraction, 5 after e/E, 6 after its sign, 7 in the exponent. */
const NUMBER_DONE = new Set([1, 2, 4, 7]);

/** Inside a string's content (not a property name, not in an escape): where content bytes leave the state as it is. */
export function isPlainString(state: MatchState): boolean {
  const top = state.stack?.top;
  return top !== undefined && top.f === 'string' && top.key === null && top.esc === 0 && top.limit === undefined && top.re === undefined;
}

/** The state after one more byte, or undefined when no document the schema accepts goes on with it. */
export function step(state: MatchState, b: number): MatchState | undefined {
  const top = state.stack?.top;
  // a string's content byte leaves the state as it was (the common case of a token mask's walk: no allocation)
  if (b >= 0x20 && b !== 0x22 && b !== 0x5c && isPlainString(state)) return state;
  if (WS.has(b) && top?.f !== 'string') {
    const ws = (state.ws ?? 0) + 1;
    if (ws > MAX_WS) return undefined;
    const next = stepByte(state, b);
    return next && { stack: next.stack, ws };
  }
  return stepByte(state, b);
}

function stepByte(state: MatchState, b: number): MatchState | undefined {
  const s = state.stack;
  if (s === null) return WS.has(b) ? state : undefined;
  const top = s.top;
  switch (top.f) {
    case 'value':
      return startValue(top.node, s.rest, b);
    case 'string':
      return top.limit === undefined && top.re === undefined ? stepString(top, s.rest, b) : stepCheckedString(s, top, b);
    case 'number': {
      const next = stepNumber(top, b);
      if (next) return { stack: push(s.rest, next) };
      if (!numberDone(top)) return undefined;
      return stepByte({ stack: s.rest }, b); // the number ended: the byte is the parent's
    }
    case 'literals': {
      const texts = top.texts.filter((t) => t.length > top.pos && t.charCodeAt(top.pos) === b);
      if (texts.length > 0) {
        const pos = top.pos + 1;
        // a literal that ends here and is a prefix of none other is done (a number literal can go on: "1" vs "12")
        if (texts.length === 1 && texts[0]!.length === pos) return { stack: s.rest };
        return { stack: push(s.rest, { f: 'literals', texts, pos }) };
      }
      // a literal complete here may end (a number, read as its text, before a delimiter)
      if (top.texts.some((t) => t.length === top.pos)) return stepByte({ stack: s.rest }, b);
      return undefined;
    }
    case 'object':
      return stepObject(top, s.rest, b);
    case 'array':
      return stepArray(top, s.rest, b);
  }
}

function startValue(node: SchemaNode, rest: Stack | null, b: number): MatchState | undefined {
  if (WS.has(b)) return { stack: push(rest, { f: 'value', node }) };
  let n = node;
  while (n.t === 'ref') n = n.target();
  if (n.t === 'literals') {
    const texts = n.texts.filter((t) => t.charCodeAt(0) === b);
    if (texts.length === 0) return undefined;
    if (texts.length === 1 && texts[0]!.length === 1) return { stack: rest };
    return { stack: push(rest, { f: 'literals', texts, pos: 1 }) };
  }
  const kinds = n.t === 'any' ? ALL_KINDS : n.kinds;
  const has = (k: Kind): boolean => kinds.includes(k);
  if (b === 0x7b && has('object')) {
    const spec = n.t === 'kinds' && n.object ? n.object : { props: new Map(), required: new Set<string>(), extra: ANY };
    return { stack: push(rest, { f: 'object', spec, phase: 0, seen: [], key: '' }) };
  }
  if (b === 0x5b && has('array')) {
    const spec = n.t === 'kinds' && n.array ? n.array : { items: ANY, min: 0, max: Infinity };
    return { stack: push(rest, { f: 'array', spec, phase: 0, count: 0 }) };
  }
  if (b === 0x22 && has('string')) {
    const limit = n.t === 'kinds' ? n.length : undefined;
    const re = n.t === 'kinds' ? n.pattern : undefined;
    if (re) return checkedState(rest, { f: 'string', esc: 0, key: null, names: null, cont: 0, need: 0, acc: 0, re, set: re.initial });
    if (limit) return checkedState(rest, { f: 'string', esc: 0, key: null, names: null, len: 0, cont: 0, need: 0, acc: 0, limit });
    return { stack: push(rest, { f: 'string', esc: 0, key: null, names: null }) };
  }
  if ((b === 0x2d || (b >= 0x30 && b <= 0x39)) && (has('number') || has('integer'))) {
    const integer = !has('number');
    const phase = b === 0x2d ? 0 : b === 0x30 ? 2 : 1;
    const range = n.t === 'kinds' ? n.range : undefined;
    if (!range) return { stack: push(rest, { f: 'number', phase, digits: b === 0x2d ? 0 : 1, integer }) };
    const frame: Frame & { f: 'number' } = { f: 'number', phase, digits: b === 0x2d ? 0 : 1, integer, text: String.fromCharCode(b), range };
    return reachable(frame) ? { stack: push(rest, frame) } : undefined;
  }
  const words: string[] = [];
  if (has('boolean')) words.push('true', 'false');
  if (has('null')) words.push('null');
  const texts = words.filter((w) => w.charCodeAt(0) === b);
  if (texts.length > 0) return { stack: push(rest, { f: 'literals', texts, pos: 1 }) };
  return undefined;
}

function stepString(top: Frame & { f: 'string' }, rest: Stack | null, b: number): MatchState | undefined {
  if (top.key !== null) {
    // a property name: its bytes, no escapes; the object frame below takes it at the closing quote
    if (b === 0x22) {
      if (top.names !== null && !top.names.includes(top.key)) return undefined;
      const obj = rest!.top as Frame & { f: 'object' };
      if (obj.seen.includes(top.key)) return undefined; // each property once
      return { stack: push(rest!.rest, { ...obj, phase: 2, key: top.key }) };
    }
    if (b === 0x5c || b < 0x20) return undefined;
    const key = top.key + String.fromCharCode(b);
    const names = top.names === null ? null : top.names.filter((n) => n.startsWith(key));
    if (names !== null && names.length === 0) return undefined;
    return { stack: push(rest, { f: 'string', esc: 0, key, names }) };
  }
  if (top.esc === 1) {
    if (b === 0x75) return { stack: push(rest, { ...top, esc: 5 }) };
    if (![0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74].includes(b)) return undefined;
    return { stack: push(rest, { ...top, esc: 0 }) };
  }
  if (top.esc > 1) {
    const hex = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
    if (!hex) return undefined;
    return { stack: push(rest, { ...top, esc: top.esc === 2 ? 0 : top.esc - 1 }) };
  }
  if (b === 0x22) return { stack: rest };
  if (b === 0x5c) return { stack: push(rest, { ...top, esc: 1 }) };
  if (b < 0x20) return undefined;
  return state_of(rest, top);
}

// A checked string's next state by byte, per stack: a token mask's walk meets the same few states again and again.
const checkedNext = new WeakMap<Stack, (MatchState | null | undefined)[]>();

/** The code points a UTF-8 sequence of `need` continuation bytes encodes (no overlongs, no surrogates apart). */
const UTF8_RANGE: readonly [number, number][] = [[0, 0x7f], [0x80, 0x7ff], [0x800, 0xffff], [0x10000, 0x10ffff]];
const ESCAPED: Readonly<Record<number, number>> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };
const hexValue = (b: number): number => (b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x41 && b <= 0x46 ? b - 0x37 : b >= 0x61 && b <= 0x66 ? b - 0x57 : -1);
const isSurrogate = (cp: number): boolean => cp >= 0xd800 && cp <= 0xdfff;

/**
 * Whether some code point in [lo, hi] (a partial character) can be read next: room under maxLength, and a move of
 * the pattern (its pruned states all lead to a match, so a move is enough). Surrogates are never code points here.
 */
function canTake(top: Frame & { f: 'string' }, lo: number, hi: number): boolean {
  if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) return false;
  if (top.limit !== undefined) return top.len! < top.limit.max;
  return regexCanTake(top.re!, top.set!, lo, hi);
}

/** The frame after a whole code point (undefined: it does not fit). */
function took(top: Frame & { f: 'string' }, cp: number): (Frame & { f: 'string' }) | undefined {
  if (isSurrogate(cp)) return undefined; // a lone \uD83D...: not a code point of its own (pairs are not supported)
  if (top.limit !== undefined) return top.len! < top.limit.max ? { ...top, esc: 0, cont: 0, need: 0, acc: 0, len: top.len! + 1 } : undefined;
  const set = regexStep(top.re!, top.set!, cp);
  return set.length > 0 ? { ...top, esc: 0, cont: 0, need: 0, acc: 0, set } : undefined;
}

/** A checked string's byte: code points decoded (UTF-8 checked, escapes read) and counted or matched. */
function stepCheckedString(s: Stack, top: Frame & { f: 'string' }, b: number): MatchState | undefined {
  let memo = checkedNext.get(s);
  if (!memo) checkedNext.set(s, (memo = []));
  const hit = memo[b];
  if (hit !== undefined) return hit ?? undefined;
  const frame = checkedFrame(top, b);
  const out = frame === null ? { stack: s.rest } : frame === undefined ? undefined : checkedState(s.rest, frame);
  memo[b] = out ?? null;
  return out;
}

// A checked string's states, one object per distinct frame over the same stack below it: prefixes of different
// tokens that reach the same state share it, and with it the memo of its next states.
const checkedStates = new WeakMap<object, Map<string, MatchState>>();
const TOP_LEVEL = {};

function checkedState(rest: Stack | null, f: Frame & { f: 'string' }): MatchState {
  let table = checkedStates.get(rest ?? TOP_LEVEL);
  if (!table) checkedStates.set(rest ?? TOP_LEVEL, (table = new Map()));
  const key = `${f.esc}.${f.cont}.${f.need}.${f.acc}.${f.limit ? `${objId(f.limit)}.${f.len}` : `${objId(f.re!)}.${objId(f.set!)}`}`;
  let st = table.get(key);
  if (!st) table.set(key, (st = { stack: push(rest, f) }));
  return st;
}

/** null: the string closes here. */
function checkedFrame(top: Frame & { f: 'string' }, b: number): (Frame & { f: 'string' }) | null | undefined {
  const cont = top.cont!;
  const acc = top.acc!;
  if (top.esc === 1) {
    if (b === 0x75) return canTake(top, 0, 0xffff) ? { ...top, esc: 5, acc: 0 } : undefined;
    const cp = ESCAPED[b];
    return cp === undefined ? undefined : took(top, cp);
  }
  if (top.esc > 1) {
    // a \u escape's hex digit: esc - 1 digits were left
    const h = hexValue(b);
    if (h < 0) return undefined;
    const v = acc * 16 + h;
    const left = top.esc - 2;
    if (left === 0) return took(top, v);
    const lo = v * 16 ** left;
    return canTake(top, lo, lo + 16 ** left - 1) ? { ...top, esc: top.esc - 1, acc: v } : undefined;
  }
  if (cont > 0) {
    if ((b & 0xc0) !== 0x80) return undefined; // a character cut short
    const v = acc * 64 + (b & 0x3f);
    if (cont === 1) {
      const [lo, hi] = UTF8_RANGE[top.need!]!;
      return v >= lo && v <= hi ? took(top, v) : undefined; // no overlong form
    }
    const span = 64 ** (cont - 1);
    const [lo, hi] = UTF8_RANGE[top.need!]!;
    return canTake(top, Math.max(lo, v * span), Math.min(hi, v * span + span - 1)) ? { ...top, cont: cont - 1, acc: v } : undefined;
  }
  if (b === 0x22) {
    if (top.limit !== undefined) return top.len! >= top.limit.min ? null : undefined;
    return regexAccepts(top.re!, top.set!) ? null : undefined;
  }
  if (b === 0x5c) return canTake(top, 0, 0xffff) ? { ...top, esc: 1 } : undefined;
  if (b < 0x20) return undefined;
  if (b < 0x80) return took(top, b);
  const need = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
  if (need === 0) return undefined; // a continuation byte without its lead, or no UTF-8 lead byte
  const v = b & (0x7f >> (need + 1));
  const span = 64 ** need;
  const [lo, hi] = UTF8_RANGE[need]!;
  return canTake(top, Math.max(lo, v * span), Math.min(hi, v * span + span - 1)) ? { ...top, cont: need, need, acc: v } : undefined;
}

// the same string frame (content bytes leave it unchanged: the state is shared, not copied)
const state_of = (rest: Stack | null, top: Frame): MatchState => ({ stack: push(rest, top) });

function stepNumber(top: Frame & { f: 'number' }, b: number): (Frame & { f: 'number' }) | undefined {
  if (top.range === undefined) return stepNumberText(top, b);
  if (b === 0x65 || b === 0x45) return undefined; // a bounded number has no exponent
  const next = stepNumberText(top, b);
  if (next === undefined) return undefined;
  next.text = top.text + String.fromCharCode(b);
  next.range = top.range;
  return reachable(next) ? next : undefined;
}

/** A bounded number's value so far, in units of 10^-16: its sign, integer digits and fraction digits. */
function numberParts(frame: Frame & { f: 'number' }): { neg: boolean; int: string; frac: string } {
  const t = frame.text!;
  const neg = t.startsWith('-');
  const body = neg ? t.slice(1) : t;
  const dot = body.indexOf('.');
  return { neg, int: dot < 0 ? body : body.slice(0, dot), frac: dot < 0 ? '' : body.slice(dot + 1) };
}

const inside = (r: NumRange, lo: bigint, hi: bigint): boolean => (r.lo === null || hi >= r.lo) && (r.hi === null || lo <= r.hi);

/** Whether some number this prefix can still become lies within its range (whole numbers for an integer). */
function reachable(frame: Frame & { f: 'number' }): boolean {
  const { neg, int, frac } = numberParts(frame);
  // the magnitudes reachable from here, as [lo, hi] intervals in units of 10^-16
  const spans: [bigint, bigint][] = [];
  const fracUnits = (f: string): bigint => (f === '' ? 0n : BigInt(f) * 10n ** BigInt(16 - f.length));
  const top = frame.integer ? 0n : UNIT - 1n; // how far a fraction can take a whole number up
  if (int === '') spans.push([0n, 10n ** 16n * UNIT]); // only '-' yet
  else if (frame.phase === 3 || frame.phase === 4) {
    const base = BigInt(int) * UNIT + fracUnits(frac);
    spans.push([base, base + 10n ** BigInt(16 - frac.length) - 1n]);
  } else if (int === '0') spans.push([0n, top]);
  else {
    const v = BigInt(int);
    for (let j = 0; j <= MAX_INT_DIGITS - int.length; j++) {
      const p = 10n ** BigInt(j);
      spans.push([v * p * UNIT, (v + 1n) * p * UNIT - UNIT + top]);
    }
  }
  return spans.some(([lo, hi]) => (neg ? inside(frame.range!, -hi, -lo) : inside(frame.range!, lo, hi)));
}

/** Whether the number read so far may end here: a complete number within its range. */
function numberDone(frame: Frame & { f: 'number' }): boolean {
  if (!NUMBER_DONE.has(frame.phase)) return false;
  if (frame.range === undefined) return true;
  const { neg, int, frac } = numberParts(frame);
  const v = BigInt(int) * UNIT + (frac === '' ? 0n : BigInt(frac) * 10n ** BigInt(16 - frac.length));
  return inside(frame.range, neg ? -v : v, neg ? -v : v);
}

function stepNumberText(top: Frame & { f: 'number' }, b: number): (Frame & { f: 'number' }) | undefined {
  const digit = b >= 0x30 && b <= 0x39;
  const p = top.phase;
  const next = (phase: number, digits: number): Frame & { f: 'number' } => ({ f: 'number', phase, digits, integer: top.integer });
  if (p === 0) return digit ? next(b === 0x30 ? 2 : 1, 1) : undefined;
  if (p === 1 && digit) return top.digits < MAX_INT_DIGITS ? next(1, top.digits + 1) : undefined;
  if ((p === 1 || p === 2) && b === 0x2e && !top.integer) return next(3, 0);
  if ((p === 1 || p === 2 || p === 4) && (b === 0x65 || b === 0x45) && !top.integer) return next(5, 0);
  if ((p === 3 || p === 4) && digit) return top.digits < MAX_FRAC_DIGITS ? next(4, top.digits + 1) : undefined;
  if (p === 5 && (b === 0x2b || b === 0x2d)) return next(6, 0);
  if ((p === 5 || p === 6 || p === 7) && digit) return top.digits < MAX_EXP_DIGITS ? next(7, top.digits + 1) : undefined;
  return undefined;
}

/** Object phases: 0 after '{', 1 after ',', 2 after a key, 3 after ':' (value), 4 after a value. */
function stepObject(top: Frame & { f: 'object' }, rest: Stack | null, b: number): MatchState | undefined {
  if (WS.has(b) && top.phase !== 3) return { stack: push(rest, top) };
  const { spec } = top;
  const remaining = (): string[] => [...spec.props.keys()].filter((k) => !top.seen.includes(k));
  const canClose = (): boolean => [...spec.required].every((r) => top.seen.includes(r));
  switch (top.phase) {
    case 0:
    case 1: {
      if (b === 0x7d && top.phase === 0 && canClose()) return { stack: rest };
      if (b !== 0x22) return undefined;
      // a property name: declared names not seen yet, or (with extra properties allowed) any name
      const names = spec.extra === null ? remaining() : null;
      if (names !== null && names.length === 0) return undefined;
      return { stack: push(push(rest, { ...top, phase: 2 }), { f: 'string', esc: 0, key: '', names }) };
    }
    case 2: {
      if (b !== 0x3a) return undefined;
      const node = spec.props.get(top.key) ?? spec.extra ?? ANY;
      return { stack: push(push(rest, { ...top, phase: 4, seen: [...top.seen, top.key], key: '' }), { f: 'value', node }) };
    }
    case 4: {
      if (b === 0x7d && canClose()) return { stack: rest };
      if (b === 0x2c && (spec.extra !== null || remaining().length > 0)) return { stack: push(rest, { ...top, phase: 1, key: '' }) };
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Array phases: 0 after '[', 1 after ',', 2 after an item. */
function stepArray(top: Frame & { f: 'array' }, rest: Stack | null, b: number): MatchState | undefined {
  if (WS.has(b)) return { stack: push(rest, top) };
  const { spec } = top;
  if (top.phase === 0 && b === 0x5d) return spec.min === 0 ? { stack: rest } : undefined;
  if (top.phase === 2) {
    if (b === 0x5d) return top.count >= spec.min ? { stack: rest } : undefined;
    if (b === 0x2c) return top.count < spec.max ? { stack: push(rest, { ...top, phase: 1 }) } : undefined;
    return undefined;
  }
  // an item starts with this byte
  if (top.count >= spec.max) return undefined;
  return startValue(spec.items, push(rest, { ...top, phase: 2, count: top.count + 1 }), b);
}

/** Whether the input read so far is a whole document (a number or literal at the top may still be open). */
export function isComplete(state: MatchState): boolean {
  let s = state.stack;
  while (s !== null) {
    const top = s.top;
    if (top.f === 'number' && numberDone(top)) s = s.rest;
    else if (top.f === 'literals' && top.texts.some((t) => t.length === top.pos)) s = s.rest;
    else return false;
  }
  return true;
}

/**
 * A key identifying the state for caching its token mask: equal keys, equal masks (the same next tokens allowed; a
 * bounded string's far-off limits are cut to what one token could reach).
 */
export function stateKey(state: MatchState): string {
  const parts: string[] = [`w${state.ws ?? 0}`];
  for (let s = state.stack; s !== null; s = s.rest) {
    const t = s.top;
    switch (t.f) {
      case 'value':
        parts.push(`v${nodeKey(t.node)}`);
        break;
      case 'string':
        // a bounded string: how many code points it still needs and may take, each capped past what one token holds
        // (128), so that states whose next token cannot tell them apart share a mask
        parts.push(
          t.key !== null
            ? `k${t.key}\u0000${t.names === null ? '*' : t.names.join('\u0000')}`
            : t.limit === undefined && t.re === undefined
              ? `s${t.esc}`
              : `s${t.esc}.${t.cont}.${t.need}.${t.acc}.${t.limit !== undefined ? `${Math.min(Math.max(t.limit.min - t.len!, 0), 129)}.${Math.min(t.limit.max - t.len!, 129)}` : `r${objId(t.re!)}.${objId(t.set!)}`}`,
        );
        break;
      case 'number':
        parts.push(`n${t.phase}.${t.digits}.${t.integer ? 1 : 0}${t.range === undefined ? '' : `.${t.text}.${rangeId(t.range)}`}`);
        break;
      case 'literals':
        parts.push(`l${t.pos}:${t.texts.join('\u0000')}`);
        break;
      case 'object':
        parts.push(`o${objectId(t.spec)}.${t.phase}.${t.seen.join('\u0000')}.${t.key}`);
        break;
      case 'array':
        parts.push(`a${arrayId(t.spec)}.${t.phase}.${t.count >= t.spec.min && t.spec.max === Infinity ? 'ok' : t.count}`);
        break;
    }
  }
  return parts.join('|');
}

// stable ids of compiled nodes for stateKey (a WeakMap: schemas come and go with requests)
const ids = new WeakMap<object, number>();
let nextId = 1;
const objId = (o: object): number => {
  let i = ids.get(o);
  if (i === undefined) ids.set(o, (i = nextId++));
  return i;
};
const nodeKey = (n: SchemaNode): number => objId(n);
const objectId = (o: ObjectSpec): number => objId(o);
const arrayId = (a: ArraySpec): number => objId(a);
const rangeId = (r: NumRange): number => objId(r);
