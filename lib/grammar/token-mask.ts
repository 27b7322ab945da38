// The tokens a JSON-schema matcher state allows next: every ordinary o200k token whose bytes the matcher
// reads without failing, and the given end tokens once the document is complete. The vocabulary is
// walked in byte order, so tokens that share a prefix share its matcher states, and a prefix that fails
// skips every token under it. Masks are cached by matcher state (inside a string every state is the same
// one), a few hundred a schema. A new state's mask is computed on a worker thread (mask-worker.ts): the
// walk takes 14-55 ms, too long to hold the event loop; a draw that needs it waits (MaskCache.fetch).
import type { Worker } from 'node:worker_threads';
import { WorkerClient } from '../worker-client.js';
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

/** Builds the vocabulary's byte-ordered index on this thread now (~0.4 s, once a thread). */
export function warmTokenMasks(): void {
  sortedVocab();
}

/**
 * Starts the mask worker and has it build its index now, off the event loop (once a worker): the server calls it
 * before it listens, and a generation when its response format is resolved, so that its first mask waits less.
 */
export function warmMaskWorker(): void {
  const w = worker.start();
  if (w === null || warmed === w) return;
  w.postMessage({ id: -1, warm: true });
  warmed = w;
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

// ---------------------------------------------------------------------------------------------
// The mask worker: one thread (started on first use, unref'd while idle), one request a new state.
// ---------------------------------------------------------------------------------------------
// (stayBroken: once it could not start or died, masks are computed inline: slower for the event loop, same masks)
const worker = new WorkerClient<{ id: number; error?: string; mask?: Uint32Array }>(import.meta.url, './mask-worker.js', '../../dist/grammar/mask-worker.js', 'token mask worker', true);
let warmed: Worker | undefined;

/** Where the masks of this process were computed (tests and benchmarks read it). */
export const maskStats = { onWorker: 0, inline: 0 };

// Every cache's masks are also in one least-recently-used list with a byte budget, so that many schemas (a server
// whose clients send many tools) cannot grow the process: a mask over the full vocabulary is 25 KB.
let budget = 64 * 1024 * 1024;
let held = 0;
const everyMask = new Map<string, { owner: Map<string, Uint32Array>; key: string; bytes: number }>();
let nextCache = 0;

/** @internal Bytes of masks held now, and (for tests) a new budget for them. */
export function maskCacheBytes(newBudget?: number): number {
  if (newBudget !== undefined) {
    budget = newBudget;
    evict();
  }
  return held;
}

/** Takes a mask out of the list (its owner's map is the caller's). */
function untrack(id: string): void {
  const e = everyMask.get(id);
  if (!e) return;
  everyMask.delete(id);
  held -= e.bytes;
}

function evict(): void {
  for (const [id, e] of everyMask) {
    if (held <= budget) break;
    untrack(id);
    e.owner.delete(e.key);
  }
}

/**
 * A cache of masks by matcher state for one compiled schema (its JSON `source`, whose states it is given) and
 * its end tokens. `get` answers from the cache; `fetch` computes a missing mask on the worker thread.
 */
export class MaskCache {
  readonly #masks = new Map<string, Uint32Array>();
  readonly #pending = new Map<string, Promise<Uint32Array>>();
  readonly #id = nextCache++;
  constructor(
    readonly source: string,
    readonly endTokens: readonly number[],
    readonly vocab: number,
    readonly capacity = 512,
  ) {}

  #key(state: MatchState): string {
    return stateKey(state) + (isComplete(state) ? '#' : '');
  }

  #store(key: string, m: Uint32Array): Uint32Array {
    const id = `${this.#id}|${key}`;
    untrack(id);
    this.#masks.set(key, m);
    everyMask.set(id, { owner: this.#masks, key, bytes: m.byteLength });
    held += m.byteLength;
    if (this.#masks.size > this.capacity) {
      const first = this.#masks.keys().next().value!;
      this.#masks.delete(first);
      untrack(`${this.#id}|${first}`);
    }
    evict();
    return m;
  }

  /** The state's mask when cached (undefined: fetch it first). */
  cached(state: MatchState): Uint32Array | undefined {
    const key = this.#key(state);
    const m = this.#masks.get(key);
    if (m) {
      this.#masks.delete(key); // most recently used last, here and in the list of every cache's masks
      this.#masks.set(key, m);
      const id = `${this.#id}|${key}`;
      const e = everyMask.get(id);
      if (e) {
        everyMask.delete(id);
        everyMask.set(id, e);
      }
    }
    return m;
  }

  /** The state's mask, computed on this thread when not cached (a caller that did not fetch it first). */
  get(state: MatchState): Uint32Array {
    const m = this.cached(state);
    if (m) return m;
    maskStats.inline++;
    return this.#store(this.#key(state), allowedTokens(state, this.endTokens, this.vocab));
  }

  /**
   * The state's mask, computed on the worker thread (which replays `bytes`, the document read so far, from the
   * schema's initial state); requests for one state share one computation. Never rejects: when the worker
   * fails, the mask is computed here.
   */
  fetch(state: MatchState, bytes: Uint8Array): Promise<Uint32Array> {
    const key = this.#key(state);
    const m = this.#masks.get(key);
    if (m) return Promise.resolve(m);
    let p = this.#pending.get(key);
    if (p) return p;
    const w = worker.start();
    if (!w) return Promise.resolve(this.get(state));
    p = worker.request(w, { source: this.source, bytes, ends: [...this.endTokens], vocab: this.vocab }).then(
      (m) => {
        maskStats.onWorker++;
        return this.#store(key, m.mask!);
      },
      () => this.get(state),
    );
    p = p.finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }
}

/** Whether `id` is set in a mask. */
export const allows = (mask: Uint32Array, id: number): boolean => ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
