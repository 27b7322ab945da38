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
import { WorkerClient } from './worker-client.js';

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
  /** Synchronous: a 1 MB text can take up to ~1 s. Long texts from users: use encodeAsync. */
  encode(text: string, options?: EncodeOptions): number[];
  /** The same ids as encode(); texts past a few thousand characters are encoded on a worker thread, so the event loop never waits for them. */
  encodeAsync(text: string, options?: EncodeOptions): Promise<number[]>;
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

// Token bytes -> rank, built on the first long piece: every ordinary token's bytes in one buffer and an
// open-addressing hash table of ids over them (no Map, no string keys, no allocation per lookup).
interface ByteRankIndex {
  two: Int32Array; // 2-byte tokens: b0 | b1 << 8 -> rank, -1: none (most lookups)
  bytes: Uint8Array; // token id's bytes at [start[id], start[id + 1])
  start: Int32Array;
  slots: Int32Array; // hash slot -> id, -1: empty
  mask: number;
  maxLen: number;
}
let byteRanks: ByteRankIndex | undefined;
function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s); // FNV-1a, then a murmur3 finaliser to spread the low bits
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}
function utf8Length(str: string): number {
  let n = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < str.length && (str.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
function byteRankIndex(): ByteRankIndex {
  if (byteRanks) return byteRanks;
  // gpt-tokenizer keeps a token as a string when its bytes are valid UTF-8 (then encoding the string
  // gives them back), else as the byte values: one TextEncoder call for all the strings
  const start = new Int32Array(FIRST_SPECIAL_ID + 1);
  const strings: string[] = [];
  let total = 0;
  for (let id = 0; id < FIRST_SPECIAL_ID; id++) {
    start[id] = total;
    const r = ranks[id];
    if (r === undefined) continue;
    if (typeof r === 'string') {
      total += utf8Length(r);
      strings.push(r);
    } else total += r.length;
  }
  start[FIRST_SPECIAL_ID] = total;
  const joined = textEncoder.encode(strings.join(''));
  const bytes = new Uint8Array(total);
  let from = 0;
  for (let id = 0; id < FIRST_SPECIAL_ID; id++) {
    const r = ranks[id];
    const len = start[id + 1]! - start[id]!;
    if (typeof r === 'string') {
      bytes.set(joined.subarray(from, from + len), start[id]!);
      from += len;
    } else if (r !== undefined) bytes.set(r, start[id]!);
  }
  if (from !== joined.length) throw new Error('o200k: rank table bytes do not add up');
  const size = 1 << 19; // 2.6x the 199,998 tokens
  const index: ByteRankIndex = { two: new Int32Array(65536).fill(-1), bytes, start, slots: new Int32Array(size).fill(-1), mask: size - 1, maxLen: 0 };
  for (let id = 0; id < FIRST_SPECIAL_ID; id++) {
    const s = start[id]!;
    const len = start[id + 1]! - s;
    if (len === 0) continue;
    index.maxLen = Math.max(index.maxLen, len);
    if (len === 2) index.two[bytes[s]! | (bytes[s + 1]! << 8)] = id;
    let i = hashBytes(bytes, s, s + len) & index.mask;
    while (index.slots[i] !== -1) i = (i + 1) & index.mask;
    index.slots[i] = id;
  }
  return (byteRanks = index);
}
/** Rank (= id) of the token whose bytes are b[s, e), -1 if none. */
function lookupBytes(index: ByteRankIndex, b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  if (len === 2) return index.two[b[s]! | (b[s + 1]! << 8)]!;
  if (len > index.maxLen) return -1;
  const { bytes, start, slots, mask } = index;
  for (let i = hashBytes(b, s, e) & mask; ; i = (i + 1) & mask) {
    const id = slots[i]!;
    if (id < 0) return -1;
    const t = start[id]!;
    if (start[id + 1]! - t !== len) continue;
    let k = 0;
    while (k < len && bytes[t + k] === b[s + k]) k++;
    if (k === len) return id;
  }
}

/** BPE of one piece with a binary heap of (rank, start) over a linked list of parts. */
function mergeLongPiece(piece: string): number[] {
  const index = byteRankIndex();
  const bytes = textEncoder.encode(piece);
  const n = bytes.length;
  const rankOf = (s: number, e: number): number => lookupBytes(index, bytes, s, e);
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
  // a 4-ary heap (half the depth of a binary one; the four children share a cache line)
  const heap = new Float64Array(2 * n + 1); // n initial pairs, at most one more a merge (the other replaces the top)
  let size = 0;
  const siftDown = (from: number, key: number): void => {
    let i = from;
    for (;;) {
      const c0 = 4 * i + 1;
      if (c0 >= size) break;
      let c = c0;
      const end = Math.min(c0 + 4, size);
      for (let k = c0 + 1; k < end; k++) if (heap[k]! < heap[c]!) c = k;
      if (heap[c]! >= key) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = key;
  };
  const push = (r: number, st: number): void => {
    const key = r * 8388608 + st;
    let i = size++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      if (heap[p]! <= key) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = key;
  };
  for (let st = 0; st < n; st++) {
    rankAt[st] = pairRank(st);
    if (rankAt[st]! >= 0) heap[size++] = rankAt[st]! * 8388608 + st;
  }
  for (let i = (size - 2) >> 2; i >= 0; i--) siftDown(i, heap[i]!); // heapify: O(n)
  while (size > 0) {
    const key = heap[0]!;
    const r = Math.floor(key / 8388608);
    const st = key - r * 8388608;
    if (rankAt[st] !== r) {
      siftDown(0, heap[--size]!); // stale: the pair changed since it was pushed
      continue;
    }
    const gone = next[st]!; // merge part st with the next one
    rankAt[gone] = -2; // its entries are stale
    next[st] = next[gone]!;
    prev[next[gone]!] = st;
    rankAt[st] = pairRank(st);
    if (rankAt[st]! >= 0) siftDown(0, rankAt[st]! * 8388608 + st); // replaces the top
    else siftDown(0, heap[--size]!);
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
  if (text.length > TINY_TEXT) {
    const done = preEncoded.get(text);
    if (done) return done.slice();
  }
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
  checkEncodeArgs(text, options, 'tokenizer.encode');
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

// ---------------------------------------------------------------------------------------------
// Encoding off the event loop. A 1 MB text takes up to ~1 s of CPU (bench/tokenizer-long.mjs), so
// encodeAsync hands texts past INLINE_CHARS to one worker thread (started on first use, unref'd while
// idle) and the event loop only copies the string there and the ids back. The runtime's own text
// paths (generate, ChatSession, the engine, the server) encode a long prompt's texts this way first
// and then render it synchronously from those results (withTextsEncoded).
// ---------------------------------------------------------------------------------------------
/** Texts up to this many characters are encoded inline: ~10 ms of CPU at worst (lone surrogates). */
export const INLINE_CHARS = 8192;
const TINY_TEXT = 32; // role names, channel names: never worth a trip to the worker

const worker = new WorkerClient<{ id: number; error?: string; ids?: Int32Array }>(import.meta.url, './tokenizer-worker.js', '../dist/tokenizer-worker.js', 'tokenizer.encodeAsync', false);

/** Int32Array -> number[] 65,536 at a time (~1 ms), one event-loop turn apart. */
async function toNumbers(ids: Int32Array): Promise<number[]> {
  const out = new Array<number>(ids.length);
  for (let at = 0; at < ids.length; ) {
    const end = Math.min(ids.length, at + 65536);
    for (; at < end; at++) out[at] = ids[at]!;
    if (at < ids.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

function checkEncodeArgs(text: unknown, options: unknown, fn: string): void {
  if (typeof text !== 'string') throw new TypeError(`${fn}: argument 'text' must be a string, got ${text === null ? 'null' : typeof text}`);
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw new TypeError(`${fn}: argument 'options' must be an object, got ${options === null ? 'null' : typeof options}`);
  const allow = (options as EncodeOptions | undefined)?.allowSpecial;
  if (allow !== undefined && typeof allow !== 'boolean' && allow !== 'all' && !(Array.isArray(allow) && allow.every((n) => typeof n === 'string')))
    throw new TypeError(`${fn}: options.allowSpecial must be true, false, 'all' or an array of special-token names, got ${JSON.stringify(allow) ?? typeof allow}`);
}

/** encode() without blocking the event loop: the same ids, from a worker thread for long texts. */
async function encodeAsync(text: string, options: EncodeOptions = {}): Promise<number[]> {
  checkEncodeArgs(text, options, 'tokenizer.encodeAsync');
  // inline when short; a long piece needs the rank index, built in the worker unless already here
  if (text.length <= LONG_PIECE || (byteRanks !== undefined && text.length <= INLINE_CHARS)) return encode(text, options);
  return encodeOnWorker(text, options);
}

function encodeOnWorker(text: string, options: EncodeOptions = {}): Promise<number[]> {
  const allowSpecial = options.allowSpecial ?? false;
  if (Array.isArray(allowSpecial)) for (const name of allowSpecial) if (lookupSpecial(name) === undefined) throw new Error(`Unknown special token: ${name}`);
  return worker.request(worker.start()!, { text, allowSpecial }).then((m) => toNumbers(m.ids!));
}

const preEncoded = new Map<string, number[]>();

/**
 * @internal The texts of a prompt that should be encoded off the event loop before rendering it, or
 * null when encoding all of them inline is cheap (their total is at most INLINE_CHARS).
 */
export function offThreadTexts(texts: readonly string[]): string[] | null {
  const todo = texts.filter((t) => !preEncoded.has(t)); // (inside withTextsEncoded: done)
  let total = 0;
  for (const t of todo) total += t.length;
  if (total <= INLINE_CHARS) return null;
  return [...new Set(todo.filter((t) => t.length > TINY_TEXT))];
}

/**
 * @internal Encodes `texts` (ordinary text, no special tokens) off the event loop, then runs `run`
 * synchronously with their ids at hand: a render inside it takes them instead of encoding again.
 */
export async function withTextsEncoded<T>(texts: readonly string[], run: () => T): Promise<T> {
  // all on the worker: many texts each short enough to encode inline can add up to a long stall
  const ids = await Promise.all(texts.map((t) => encodeOnWorker(t)));
  const added = texts.filter((t, i) => !preEncoded.has(t) && (preEncoded.set(t, ids[i]!), true));
  try {
    return run();
  } finally {
    for (const t of added) preEncoded.delete(t);
  }
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
  encodeAsync,
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
