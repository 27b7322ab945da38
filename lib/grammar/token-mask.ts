// The tokens a JSON-schema matcher state allows next: every ordinary o200k token whose bytes the matcher
// reads without failing, and the given end tokens once the document is complete. The vocabulary is
// walked in byte order, so tokens that share a prefix share its matcher states, and a prefix that fails
// skips every token under it. Masks are cached by matcher state (inside a string every state is the same
// one), a few hundred a schema.
import { FIRST_SPECIAL_ID, tokenizer } from '../tokenizer.js';
import { isComplete, isPlainString, stateKey, step, type MatchState } from './json-schema.js';

/** The ordinary tokens in byte order: their ids, bytes, and each one's common prefix with the one before. */
interface SortedVocab {
  ids: Int32Array;
  bytes: Uint8Array;
  start: Int32Array; // token i's bytes: bytes[start[i], start[i + 1])
  lcp: Uint16Array;
}

let sorted: SortedVocab | null = null;

function sortedVocab(): SortedVocab {
  if (sorted) return sorted;
  const n = FIRST_SPECIAL_ID;
  const list = Array.from({ length: n }, (_, id) => tokenizer.tokenBytes(id));
  // byte order: the bytes as latin1 strings compare as the bytes do (one char a byte), and fast
  const keys = list.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1'));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  let total = 0;
  for (const b of list) total += b.length;
  const bytes = new Uint8Array(total);
  const start = new Int32Array(n + 1);
  const lcp = new Uint16Array(n);
  let at = 0;
  order.forEach((id, i) => {
    const b = list[id]!;
    start[i] = at;
    bytes.set(b, at);
    at += b.length;
    if (i > 0) {
      const p = list[order[i - 1]!]!;
      let k = 0;
      while (k < p.length && k < b.length && p[k] === b[k]) k++;
      lcp[i] = k;
    }
  });
  start[n] = at;
  sorted = { ids: Int32Array.from(order), bytes, start, lcp };
  return sorted;
}

/**
 * Builds the vocabulary's byte-ordered index now (~0.4 s, once a process) instead of at the first structured
 * request, where it would hold the event loop: the server calls it before it listens.
 */
export function warmTokenMasks(): void {
  sortedVocab();
}

const maskWords = (vocab: number): number => Math.ceil(vocab / 32);

/** A bitset over the vocabulary (bit id set: allowed). */
export function allowedTokens(state: MatchState, endTokens: readonly number[], vocab: number): Uint32Array {
  const v = sortedVocab();
  const mask = new Uint32Array(maskWords(vocab));
  const n = v.ids.length;
  const states: MatchState[] = [state];
  let valid = 0; // states[0..valid] hold the previous token's prefixes
  for (let i = 0; i < n; ) {
    const from = v.start[i]!;
    const len = v.start[i + 1]! - from;
    let k = Math.min(v.lcp[i]!, valid);
    let failed = -1;
    for (; k < len; k++) {
      const b = v.bytes[from + k]!;
      // inside a string, content bytes keep the state (json-schema.ts step's first case), without the call
      if (b >= 0x20 && b !== 0x22 && b !== 0x5c && isPlainString(states[k]!)) {
        states[k + 1] = states[k]!;
        continue;
      }
      const next = step(states[k]!, b);
      if (next === undefined) {
        failed = k;
        break;
      }
      states[k + 1] = next;
    }
    if (failed < 0) {
      const id = v.ids[i]!;
      if (id < vocab) mask[id >>> 5]! |= 1 << (id & 31);
      valid = len;
      i++;
      continue;
    }
    // every following token that starts with these failed + 1 bytes fails the same way
    valid = failed;
    i++;
    while (i < n && v.lcp[i]! > failed) i++;
  }
  if (isComplete(state)) for (const id of endTokens) if (id < vocab) mask[id >>> 5]! |= 1 << (id & 31);
  return mask;
}

/** allowedTokens with a cache of masks by state, for one compiled schema (whose states it is given) and its end tokens. */
export class MaskCache {
  readonly #masks = new Map<string, Uint32Array>();
  constructor(
    readonly endTokens: readonly number[],
    readonly vocab: number,
    readonly capacity = 512,
  ) {}

  get(state: MatchState): Uint32Array {
    const key = stateKey(state) + (isComplete(state) ? '#' : '');
    let m = this.#masks.get(key);
    if (m) {
      this.#masks.delete(key); // most recently used last
      this.#masks.set(key, m);
      return m;
    }
    m = allowedTokens(state, this.endTokens, this.vocab);
    this.#masks.set(key, m);
    if (this.#masks.size > this.capacity) this.#masks.delete(this.#masks.keys().next().value!);
    return m;
  }
}

/** Whether `id` is set in a mask. */
export const allows = (mask: Uint32Array, id: number): boolean => ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
