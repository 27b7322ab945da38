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

function encodeOrdinary(text: string): number[] {
  return text === '' ? [] : gptEncode(text, { disallowedSpecial: new Set() });
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
