// The one check of token ids at the API boundary (forward, prefill, prefillAll, append, step,
// stepSample, stepSampleMany, generate, stopTokens): integers in [0, vocab), nothing coerced.
// Int32Array.from() would turn 2**32+5 into 5, 1.5 into 1, and NaN, 'abc' or a hole into 0.

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/** Throws TypeError (not a number) or RangeError (not an integer in [0, vocab)) naming `what`. */
export function checkTokenId(token: unknown, vocab: number, fn: string, what: string): number {
  if (typeof token !== 'number')
    throw new TypeError(`${fn}: ${what} must be a token id (an integer in [0, ${vocab})), got ${show(token)}`);
  if (!Number.isInteger(token) || token < 0 || token >= vocab)
    throw new RangeError(`${fn}: ${what} must be a token id (an integer in [0, ${vocab})), got ${show(token)}`);
  return token;
}

/** Token ids as an Int32Array: an Array or typed array of integers in [0, vocab); `arg` names the argument. */
export function toTokenIds(tokens: unknown, vocab: number, fn: string, arg = 'tokens'): Int32Array {
  const arrayLike =
    tokens !== null && typeof tokens === 'object' && typeof (tokens as { length?: unknown }).length === 'number';
  if (!arrayLike)
    throw new TypeError(`${fn}: argument '${arg}' must be an array of token ids, got ${tokens === null ? 'null' : typeof tokens === 'string' ? 'a string (encode it with tokenizer.encode first)' : show(tokens)}`);
  const src = tokens as ArrayLike<unknown>;
  const n = src.length;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${fn}: argument '${arg}' has an invalid length ${n}`);
  if (tokens instanceof Int32Array || tokens instanceof Uint16Array || tokens instanceof Uint8Array) {
    // integers by construction: only the range can be wrong
    for (let i = 0; i < n; i++) if ((src[i] as number) < 0 || (src[i] as number) >= vocab) checkTokenId(src[i], vocab, fn, `${arg}[${i}]`);
    return Int32Array.from(src as ArrayLike<number>);
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = checkTokenId(src[i], vocab, fn, `${arg}[${i}]`);
  return out;
}
