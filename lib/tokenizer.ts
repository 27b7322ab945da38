/**
 * o200k_harmony tokenizer (the tokenizer of gpt-oss), wrapped behind a small
 * interface of our own.
 *
 * BPE encoding is done by `gpt-tokenizer` (encoding `o200k_harmony`). Decoding
 * is done here from the raw byte-pair ranks so that we control UTF-8 handling
 * (gpt-tokenizer's own decode shares one streaming TextDecoder between calls,
 * which can leak partial bytes from one call into the next).
 */
import { encode as gptEncode } from 'gpt-tokenizer/encoding/o200k_harmony';
import bpeRanks from 'gpt-tokenizer/bpeRanks/o200k_base';
import { O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';

/** Number of token ids of the model's embedding / unembedding (0 .. 201087). */
export const VOCAB_SIZE = 201088;
/** Ids below this are ordinary BPE tokens; ids in [FIRST_SPECIAL_ID, VOCAB_SIZE) are special. */
export const FIRST_SPECIAL_ID = 199998;

/** The named (non-reserved) special tokens of o200k_harmony and their ids. */
export const SPECIAL_TOKENS = Object.freeze({
  startoftext: 199998,
  endoftext: 199999,
  return: 200002,
  constrain: 200003,
  channel: 200005,
  start: 200006,
  end: 200007,
  message: 200008,
  call: 200012,
} as const);

export type SpecialTokenName = keyof typeof SPECIAL_TOKENS;

export interface EncodeOptions {
  /**
   * Which special-token texts (e.g. `"<|start|>"`) in the input are encoded as
   * special tokens. Default `false`: special-token text is encoded as ordinary
   * text. `true` / `'all'`: every special token. A list: only those (given as
   * `"<|start|>"` or `"start"`); all others are encoded as ordinary text.
   */
  allowSpecial?: boolean | 'all' | readonly string[];
}

export interface StreamDecoder {
  /** Feeds one token id; returns the text that became complete (possibly ''). */
  push(id: number): string;
  /** Ends the stream: returns held-back bytes (incomplete sequences become U+FFFD). */
  flush(): string;
  /** Drops held-back bytes without emitting them. */
  reset(): void;
}

export interface Tokenizer {
  readonly name: 'o200k_harmony';
  /** 201088 */
  readonly vocabSize: number;
  /** Named special tokens → ids (`start` → 200006, ...). */
  readonly specialTokens: Readonly<Record<SpecialTokenName, number>>;
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes ids to text; special tokens decode to their text (`<|start|>`). Invalid UTF-8 becomes U+FFFD. */
  decode(ids: Iterable<number>): string;
  /** Raw bytes of a sequence of ids. */
  decodeBytes(ids: Iterable<number>): Uint8Array;
  /** Raw bytes of one token (special tokens: the UTF-8 of their text). */
  tokenBytes(id: number): Uint8Array;
  /** Id of a special token by name: `'start'`, `'<|start|>'`, `'reserved_200013'`, `'<|reserved_200013|>'`. Throws if unknown. */
  special(name: string): number;
  /** Text of a special token (`'<|start|>'`), or undefined if `id` is not special. */
  specialName(id: number): string | undefined;
  isSpecial(id: number): boolean;
  /** Whether `id` is an integer in [0, vocabSize). */
  isValidId(id: number): boolean;
  createStreamDecoder(): StreamDecoder;
}

const NAMED_BY_ID = new Map<number, string>(
  Object.entries(SPECIAL_TOKENS).map(([name, id]) => [id, `<|${name}|>`]),
);

function specialText(id: number): string | undefined {
  if (!Number.isInteger(id) || id < FIRST_SPECIAL_ID || id >= VOCAB_SIZE) return undefined;
  return NAMED_BY_ID.get(id) ?? `<|reserved_${id}|>`;
}

function lookupSpecial(name: string): number | undefined {
  let bare = name;
  if (bare.startsWith('<|') && bare.endsWith('|>')) bare = bare.slice(2, -2);
  if (Object.prototype.hasOwnProperty.call(SPECIAL_TOKENS, bare)) {
    return SPECIAL_TOKENS[bare as SpecialTokenName];
  }
  // tiktoken / gpt-tokenizer alias of 200018 (harmony names it <|reserved_200018|>)
  if (bare === 'endofprompt') return 200018;
  const m = /^reserved_(\d+)$/.exec(bare);
  if (m) {
    const id = Number(m[1]);
    if (String(id) === m[1] && id >= FIRST_SPECIAL_ID && id < VOCAB_SIZE && !NAMED_BY_ID.has(id)) return id;
  }
  return undefined;
}

const textEncoder = new TextEncoder();
const ranks = bpeRanks as readonly (string | readonly number[])[];
const bytesCache: (Uint8Array | undefined)[] = new Array(VOCAB_SIZE);

function tokenBytes(id: number): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
    throw new RangeError(`Invalid o200k_harmony token id: ${id}`);
  }
  let b = bytesCache[id];
  if (b === undefined) {
    if (id < FIRST_SPECIAL_ID) {
      const r = ranks[id];
      if (r === undefined) throw new RangeError(`Token ${id} is missing from the o200k ranks`);
      b = typeof r === 'string' ? textEncoder.encode(r) : Uint8Array.from(r);
    } else {
      b = textEncoder.encode(specialText(id)!);
    }
    bytesCache[id] = b;
  }
  return b;
}

function decodeBytes(ids: Iterable<number>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const id of ids) {
    const b = tokenBytes(id);
    parts.push(b);
    total += b.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function decode(ids: Iterable<number>): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(decodeBytes(ids));
}

// ---------------------------------------------------------------------------------------------
// Long pieces. Encoding splits the text with the o200k regex and runs BPE on each piece; tiktoken's
// merge loop (and gpt-tokenizer's port of it) rescans the whole piece for each merge, so a piece of
// n bytes costs O(n^2): ' '.repeat(1e5) is one piece and took 7 s, '\ud800'.repeat(1e6) over a
// minute. Pieces of natural text are a few characters. Pieces longer than LONG_PIECE go through the
// same merge rule (lowest rank first, leftmost on ties) driven by a heap: O(n log n), same tokens.
// Text is cut only at the regex's own piece boundaries, and a piece does not depend on the text
// after its end beyond what the cut keeps (the regex has no lookbehind, and its one lookahead,
// \s+(?!\S), matches the same run at the end of a segment), so the pieces, and the tokens, are
// those of encoding the whole text at once.
// ---------------------------------------------------------------------------------------------
const LONG_PIECE = 500; // characters (tiktoken's heap-merge proposal switches at the same size)
const SEGMENT = 8192; // characters of short pieces handed to gpt-tokenizer at once

// Token bytes -> rank, built on the first long piece: up to 6 bytes keyed by a number (the bytes
// packed little-endian, plus the length above them), longer ones by their latin1 string.
interface ByteRankIndex {
  two: Int32Array; // 2-byte tokens: b0 | b1 << 8 -> rank, -1: none (most lookups)
  short: Map<number, number>;
  long: Map<string, number>;
  maxLen: number;
}
let byteRanks: ByteRankIndex | undefined;
const shortKey = (b: Uint8Array, s: number, e: number): number => {
  if (e - s <= 3) {
    // a small integer key
    let k = 0;
    for (let i = e - 1; i >= s; i--) k = (k << 8) | b[i]!;
    return (e - s) * 16777216 + k;
  }
  let k = 0;
  for (let i = e - 1; i >= s; i--) k = k * 256 + b[i]!;
  return k + (e - s) * 2 ** 48;
};
function byteRankIndex(): ByteRankIndex {
  if (byteRanks) return byteRanks;
  const index: ByteRankIndex = { two: new Int32Array(65536).fill(-1), short: new Map(), long: new Map(), maxLen: 0 };
  for (let id = 0; id < FIRST_SPECIAL_ID; id++) {
    if (ranks[id] === undefined) continue;
    const b = tokenBytes(id);
    index.maxLen = Math.max(index.maxLen, b.length);
    if (b.length === 2) index.two[b[0]! | (b[1]! << 8)] = id;
    else if (b.length <= 6) index.short.set(shortKey(b, 0, b.length), id);
    else index.long.set(String.fromCharCode(...b), id);
  }
  return (byteRanks = index);
}

/** BPE of one piece with a binary heap of (rank, start) over a linked list of parts. */
function mergeLongPiece(piece: string): number[] {
  const { two, short, long, maxLen } = byteRankIndex();
  const bytes = textEncoder.encode(piece);
  const n = bytes.length;
  const rankOf = (s: number, e: number): number => {
    if (e - s === 2) return two[bytes[s]! | (bytes[s + 1]! << 8)]!;
    if (e - s > maxLen) return -1;
    if (e - s <= 6) return short.get(shortKey(bytes, s, e)) ?? -1;
    return long.get(String.fromCharCode(...bytes.subarray(s, e))) ?? -1;
  };
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  const rankAt = new Int32Array(n + 1); // rank of the pair starting at this part, -1: none
  for (let i = 0; i <= n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const pairRank = (s: number): number => (next[s]! >= n ? -1 : rankOf(s, next[next[s]!]!));
  // heap of rank * 2^23 + start (ranks < 2^18, starts < 2^23: exact in a double): the smallest rank
  // first, the leftmost start on a tie, as in the linear scan
  if (n >= 2 ** 23) throw new RangeError('tokenizer.encode: a single regex piece of 8 MB or more');
  const heap = new Float64Array(3 * n + 1); // n initial pairs, at most two more a merge
  let size = 0;
  const push = (r: number, st: number): void => {
    const key = r * 8388608 + st;
    let i = size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p]! <= key) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = key;
  };
  const pop = (): number => {
    const top = heap[0]!;
    const key = heap[--size]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
      if (heap[c]! >= key) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = key;
    return top;
  };
  for (let st = 0; st < n; st++) {
    rankAt[st] = pairRank(st);
    if (rankAt[st]! >= 0) push(rankAt[st]!, st);
  }
  const dead = new Uint8Array(n + 1);
  while (size > 0) {
    const key = pop();
    const r = Math.floor(key / 8388608);
    const st = key - r * 8388608;
    if (dead[st] || rankAt[st] !== r) continue; // stale: the pair changed since it was pushed
    const gone = next[st]!; // merge part st with the next one
    dead[gone] = 1;
    next[st] = next[gone]!;
    prev[next[gone]!] = st;
    rankAt[st] = pairRank(st);
    if (rankAt[st]! >= 0) push(rankAt[st]!, st);
    const p = prev[st]!;
    if (p >= 0) {
      rankAt[p] = pairRank(p);
      if (rankAt[p]! >= 0) push(rankAt[p]!, p);
    }
  }
  const out: number[] = [];
  for (let st = 0; st < n; st = next[st]!) {
    const id = rankOf(st, next[st]!);
    if (id < 0) throw new Error(`o200k: no token for a merged part of a long piece at byte ${st}`);
    out.push(id);
  }
  return out;
}

function encodeOrdinary(text: string): number[] {
  if (text === '') return [];
  if (text.length <= LONG_PIECE) return gptEncode(text, { disallowedSpecial: new Set() });
  const out: number[] = [];
  let segmentStart = 0; // start of the short pieces not yet encoded
  let end = 0;
  const flush = (upTo: number): void => {
    if (upTo > segmentStart) for (const t of gptEncode(text.slice(segmentStart, upTo), { disallowedSpecial: new Set() })) out.push(t);
  };
  for (const m of text.matchAll(O200K_TOKEN_SPLIT_REGEX)) {
    const start = m.index!;
    end = start + m[0].length;
    if (m[0].length > LONG_PIECE) {
      flush(start);
      for (const t of mergeLongPiece(m[0])) out.push(t);
      segmentStart = end;
    } else if (end - segmentStart >= SEGMENT) {
      flush(end);
      segmentStart = end;
    }
  }
  flush(text.length);
  return out;
}

const SPECIAL_CANDIDATE = /<\|[a-z0-9_]+\|>/g;

/**
 * Splitting on special tokens is done here: gpt-tokenizer 4.0.0 only recognises
 * allowed special tokens at the very start of the text or right after another
 * special token (its search regex is sticky), so it is only used for ordinary text.
 */
function encode(text: string, options: EncodeOptions = {}): number[] {
  const allow = options.allowSpecial ?? false;
  if (allow === false) return encodeOrdinary(text);
  let allowed: Set<number> | 'all';
  if (allow === true || allow === 'all') {
    allowed = 'all';
  } else {
    allowed = new Set<number>();
    for (const name of allow) {
      const id = lookupSpecial(name);
      if (id === undefined) throw new Error(`Unknown special token: ${name}`);
      allowed.add(id);
    }
    if (allowed.size === 0) return encodeOrdinary(text);
  }
  const out: number[] = [];
  let last = 0;
  for (const m of text.matchAll(SPECIAL_CANDIDATE)) {
    const id = lookupSpecial(m[0]);
    if (id === undefined || (allowed !== 'all' && !allowed.has(id))) continue;
    for (const t of encodeOrdinary(text.slice(last, m.index))) out.push(t);
    out.push(id);
    last = m.index + m[0].length;
  }
  for (const t of encodeOrdinary(text.slice(last))) out.push(t);
  return out;
}

class Utf8StreamDecoder implements StreamDecoder {
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  push(id: number): string {
    return this.decoder.decode(tokenBytes(id), { stream: true });
  }
  flush(): string {
    const s = this.decoder.decode();
    return s;
  }
  reset(): void {
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  }
}

export function createStreamDecoder(): StreamDecoder {
  return new Utf8StreamDecoder();
}

export const tokenizer: Tokenizer = Object.freeze({
  name: 'o200k_harmony' as const,
  vocabSize: VOCAB_SIZE,
  specialTokens: SPECIAL_TOKENS,
  encode,
  decode,
  decodeBytes,
  tokenBytes,
  special(name: string): number {
    const id = lookupSpecial(name);
    if (id === undefined) throw new Error(`Unknown special token: ${name}`);
    return id;
  },
  specialName: specialText,
  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= FIRST_SPECIAL_ID && id < VOCAB_SIZE;
  },
  isValidId(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < VOCAB_SIZE;
  },
  createStreamDecoder,
});

export default tokenizer;
