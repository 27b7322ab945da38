// Logit bias and the presence / frequency penalties, as OpenAI defines them: before each draw,
//   logit[j] += bias[j] - count[j] * frequencyPenalty - (count[j] > 0 ? presencePenalty : 0)
// where count[j] is how many times token j was drawn so far in this generation (the prompt does not
// count). The sum goes to the native draw as one sparse bias a step (model/logit_bias.h: added to the
// row after its log-probabilities are read, before temperature and the other sampling options).

/**
 * A sparse additive bias on a logits row: deltas[i] is added at ids[i]; with `allow` (a bitset of
 * ceil(vocab / 32) words, structured outputs), every id whose bit is clear is left out of the draw.
 */
export interface LogitBias {
  ids: Int32Array;
  deltas: Float32Array;
  allow?: Uint32Array;
}

/** OpenAI's limits. */
export const MAX_LOGIT_BIAS = 100;
export const MAX_PENALTY = 2;

/** A generation's resolved bias and penalties (null when it has none). */
export interface BiasPlan {
  base: Map<number, number>;
  presence: number;
  frequency: number;
}

/**
 * Checks options.logitBias ({ id: bias }, ids as numbers or the strings JSON gives; bias in [-100, 100]) and the
 * penalties (in [-2, 2]); null when none changes anything.
 */
export function resolveBiasPlan(
  options: { logitBias?: Readonly<Record<string | number, number>>; presencePenalty?: number; frequencyPenalty?: number },
  vocab: number,
  fn: string,
): BiasPlan | null {
  const base = new Map<number, number>();
  if (options.logitBias !== undefined) {
    const lb = options.logitBias as unknown;
    if (lb === null || typeof lb !== 'object' || Array.isArray(lb))
      throw new TypeError(`${fn}: options.logitBias must be an object of token id -> bias, got ${Array.isArray(lb) ? 'an array' : lb === null ? 'null' : typeof lb}`);
    for (const [key, value] of Object.entries(lb as Record<string, unknown>)) {
      const id = Number(key);
      if (!/^\d+$/.test(key) || !Number.isSafeInteger(id) || id >= vocab)
        throw new RangeError(`${fn}: options.logitBias key '${key}' is not a token id of this model (0 to ${vocab - 1})`);
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${fn}: options.logitBias[${key}] must be a finite number, got ${String(value)}`);
      if (Math.abs(value) > MAX_LOGIT_BIAS) throw new RangeError(`${fn}: options.logitBias[${key}] must be in [-${MAX_LOGIT_BIAS}, ${MAX_LOGIT_BIAS}], got ${value}`);
      if (value !== 0) base.set(id, value);
    }
  }
  const penalty = (name: 'presencePenalty' | 'frequencyPenalty'): number => {
    const v = options[name] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${fn}: options.${name} must be a finite number, got ${String(v)}`);
    if (Math.abs(v) > MAX_PENALTY) throw new RangeError(`${fn}: options.${name} must be in [-${MAX_PENALTY}, ${MAX_PENALTY}], got ${v}`);
    return v;
  };
  const presence = penalty('presencePenalty');
  const frequency = penalty('frequencyPenalty');
  if (base.size === 0 && presence === 0 && frequency === 0) return null;
  return { base, presence, frequency };
}

/** The bias of the next draw after `drawn` (the generation's tokens so far); undefined when it is empty. */
export function drawBias(plan: BiasPlan | null, drawn: readonly number[]): LogitBias | undefined {
  if (plan === null) return undefined;
  const delta = new Map(plan.base);
  if (plan.presence !== 0 || plan.frequency !== 0) {
    const counts = new Map<number, number>();
    for (const t of drawn) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) delta.set(t, (delta.get(t) ?? 0) - c * plan.frequency - plan.presence);
  }
  if (delta.size === 0) return undefined;
  return { ids: Int32Array.from(delta.keys()), deltas: Float32Array.from(delta.values()) };
}
