// Structured outputs: a generation's response format (generate()'s responseFormat; the server's
// response_format and text.format) as a mask on each draw. In Harmony mode the answer is constrained:
// the final channel's message (the reasoning before it is free), which must be one JSON document the
// schema accepts and then <|return|>. Raw output (parse: false) is constrained from its first token and
// ends with one of the generation's stop tokens. Strict tools (generate()'s strictTools; the server's
// function tools with strict: true): each call's arguments (an assistant message to functions.NAME) are
// one JSON document the function's parameters schema accepts, and then <|call|>.
import { SPECIAL_TOKENS, tokenizer } from '../tokenizer.js';
import { compileSchema, initialState, oneOfTextsState, step, SchemaError, type MatchState, type SchemaNode } from './json-schema.js';
import { MaskCache, warmMaskWorker } from './token-mask.js';

export { SchemaError };

/** generate()'s responseFormat, as OpenAI's response_format: free text, any JSON object, or a JSON schema. */
export type ResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: Record<string, unknown> | boolean };

export interface ConstraintPlan {
  /**
   * 'final': the Harmony final channel's message; 'all': the whole (raw) output; 'call': a strict tool's arguments;
   * 'name': the function name that completes a call's header the prompt opened, 'ctype': that header's content type
   * after its <|constrain|> (json).
   */
  scope: 'final' | 'all' | 'call' | 'name' | 'ctype';
  schema: SchemaNode;
  masks: MaskCache;
  /** Where its matcher starts (the schema's initial state unless given). */
  start: () => MatchState;
}

/**
 * How a schema is compiled: 'format' (a response format: every keyword it cannot enforce is a SchemaError) or 'tool'
 * (a strict tool's parameters: lenient, the keywords that only narrow values are skipped).
 */
export type SchemaMode = 'format' | 'tool';

/** The plan a source names (`mode:json`; mode 'names' for function names) and where its matcher starts. */
export function compiledSource(source: string): { schema: SchemaNode; start: () => MatchState } {
  const at = source.indexOf(':');
  const mode = source.slice(0, at);
  const json = JSON.parse(source.slice(at + 1)) as unknown;
  if (mode === 'names') return { schema: { t: 'any' }, start: () => oneOfTextsState(json as string[]) };
  const { schema } = compiledSchema(json, mode as SchemaMode);
  return { schema, start: () => initialState(schema) };
}

/** A schema compiled, its source (`mode:json`, what the mask worker compiles it from) and its masks by end tokens and vocabulary. */
interface CompiledSchema {
  source: string;
  schema: SchemaNode;
  masks: Map<string, MaskCache>;
}

// Compiled schemas and their masks, shared by the requests that send the same schema (least recently used out).
const plans = new Map<string, CompiledSchema>();
const MAX_SCHEMAS = 32;

/**
 * A JSON schema compiled once and cached (with its masks) for the requests that send the same schema. A schema it
 * cannot enforce is a SchemaError (the server checks a request's schema with it before starting the turn).
 */
export function compiledSchema(schema: unknown, mode: SchemaMode = 'format'): CompiledSchema {
  const key = `${mode}:${JSON.stringify(schema)}`;
  let entry = plans.get(key);
  if (entry) plans.delete(key);
  else entry = { source: key, schema: compileSchema(schema, { lenient: mode === 'tool' }), masks: new Map() };
  plans.set(key, entry);
  if (plans.size > MAX_SCHEMAS) plans.delete(plans.keys().next().value!);
  return entry;
}

/** Checks and compiles a response format; null for text (no constraint). SchemaError / TypeError name what is wrong. */
export function resolveResponseFormat(format: unknown, parse: boolean, stops: ReadonlySet<number>, vocab: number, fn: string): ConstraintPlan | null {
  if (format === undefined) return null;
  if (format === null || typeof format !== 'object') throw new TypeError(`${fn}: options.responseFormat must be an object { type }`);
  const f = format as { type?: unknown; schema?: unknown };
  if (f.type === 'text') return null;
  let source: unknown;
  if (f.type === 'json_object') source = { type: 'object' };
  else if (f.type === 'json_schema') {
    if (f.schema === undefined) throw new TypeError(`${fn}: options.responseFormat.schema is missing (type 'json_schema')`);
    source = f.schema;
  } else throw new TypeError(`${fn}: options.responseFormat.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(f.type)}`);
  let entry: ReturnType<typeof compiledSchema>;
  try {
    entry = compiledSchema(source);
  } catch (e) {
    if (e instanceof SchemaError) throw new SchemaError(`${fn}: options.responseFormat.schema: ${e.message}`);
    throw e;
  }
  const scope = parse ? 'final' : 'all';
  const ends = (parse ? [SPECIAL_TOKENS.return] : [...stops]).filter((id) => id < vocab).sort((a, b) => a - b);
  return { scope, schema: entry.schema, masks: masksOf(entry, ends, vocab), start: () => initialState(entry.schema) };
}

/** A generation's constraints: its response format's, its strict tools' by function name, and its call's name. */
export interface ConstraintPlans {
  format: ConstraintPlan | null;
  tools: ReadonlyMap<string, ConstraintPlan>;
  /** The function name a call header the prompt opened must complete with (held from the first draw). */
  name?: ConstraintPlan | null;
}

/** What a function name may hold (the server's schema allows less: [A-Za-z0-9_-]{1,64}). */
const FUNCTION_NAME = /^[A-Za-z0-9_.-]+$/;

/** A function without parameters (rendered `() => any`) takes the empty object. */
const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

/**
 * Checks and compiles strict tools ({ name: parameters schema }; a schema of undefined or null: no arguments, `{}`);
 * an empty map for none. Tool calls are Harmony messages: parse must be on. SchemaError / TypeError name what is wrong.
 */
export function resolveStrictTools(tools: unknown, parse: boolean, vocab: number, fn: string): Map<string, ConstraintPlan> {
  const out = new Map<string, ConstraintPlan>();
  if (tools === undefined) return out;
  if (tools === null || typeof tools !== 'object' || Array.isArray(tools))
    throw new TypeError(`${fn}: options.strictTools must be an object { functionName: parametersSchema }`);
  const entries = Object.entries(tools as Record<string, unknown>);
  if (entries.length === 0) return out;
  if (!parse) throw new TypeError(`${fn}: options.strictTools needs parse: true (a tool call is a Harmony message)`);
  if (SPECIAL_TOKENS.call >= vocab) throw new TypeError(`${fn}: options.strictTools needs Harmony's <|call|> token, which this model's vocabulary of ${vocab} lacks`);
  for (const [name, schema] of entries) {
    if (!FUNCTION_NAME.test(name)) throw new TypeError(`${fn}: options.strictTools: '${name}' is not a function name`);
    let entry: CompiledSchema;
    try {
      entry = compiledSchema(schema ?? NO_ARGUMENTS, 'tool');
    } catch (e) {
      if (e instanceof SchemaError) throw new SchemaError(`${fn}: options.strictTools.${name}: ${e.message}`);
      throw e;
    }
    out.set(name, { scope: 'call', schema: entry.schema, masks: masksOf(entry, [SPECIAL_TOKENS.call], vocab), start: () => initialState(entry.schema) });
  }
  return out;
}

// the masks of function-name plans, by vocabulary and names (least recently used out, as the schemas)
const namePlans = new Map<string, MaskCache>();

/**
 * A prompt that ends inside a call's header, after `to=functions.` (the server's tool_choice 'required' with several
 * tools): the name the generation writes is held to one of `names`, then the header goes on with <|constrain|> or
 * <|message|>. null for none.
 */
export function resolveCallNames(names: unknown, parse: boolean, vocab: number, fn: string): ConstraintPlan | null {
  if (names === undefined) return null;
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || !FUNCTION_NAME.test(n)))
    throw new TypeError(`${fn}: options.toolChoiceNames must be a non-empty array of function names`);
  if (!parse) throw new TypeError(`${fn}: options.toolChoiceNames needs parse: true (a tool call is a Harmony message)`);
  if (SPECIAL_TOKENS.message >= vocab) throw new TypeError(`${fn}: options.toolChoiceNames needs Harmony's tokens, which this model's vocabulary of ${vocab} lacks`);
  return textsPlan('name', [...new Set(names as string[])].sort(), [SPECIAL_TOKENS.constrain, SPECIAL_TOKENS.message], vocab);
}

/** A plan that reads one of `texts` (raw text, no JSON) and then one of the end tokens. */
function textsPlan(scope: 'name' | 'ctype', texts: string[], ends: number[], vocab: number): ConstraintPlan {
  const source = `names:${JSON.stringify(texts)}`;
  const sortedEnds = [...ends].sort((a, b) => a - b);
  const key = `${vocab}:${sortedEnds.join(',')}:${source}`;
  let masks = namePlans.get(key);
  if (masks) namePlans.delete(key);
  else masks = new MaskCache(source, sortedEnds, vocab);
  namePlans.set(key, masks);
  if (namePlans.size > MAX_SCHEMAS) namePlans.delete(namePlans.keys().next().value!);
  warmMaskWorker();
  return { scope, schema: { t: 'any' }, masks, start: () => oneOfTextsState(texts) };
}

function masksOf(entry: CompiledSchema, ends: number[], vocab: number): MaskCache {
  const masksKey = `${vocab}:${ends.join(',')}`;
  let masks = entry.masks.get(masksKey);
  if (!masks) entry.masks.set(masksKey, (masks = new MaskCache(entry.source, ends, vocab)));
  warmMaskWorker();
  return masks;
}

/** One generation's place in its constraints: whether its draws are constrained now, and the matcher's state. */
export class Constraint {
  readonly plans: ConstraintPlans;
  /** The plan of the part being constrained now (null: free). */
  #plan: ConstraintPlan | null = null;
  #state: MatchState | null = null;
  /** The document's bytes read so far (what the mask worker replays to reach #state). */
  #bytes = new Uint8Array(256);
  #length = 0;
  /** The response format's part ended (its end token was drawn): a later final message is free. */
  #formatDone = false;

  constructor(plans: ConstraintPlans) {
    this.plans = plans;
    if (plans.name) this.#start(plans.name);
    else if (plans.format?.scope === 'all') this.#start(plans.format);
  }

  #start(plan: ConstraintPlan): void {
    this.#plan = plan;
    this.#state = plan.start();
    this.#length = 0;
  }

  /**
   * Harmony: an assistant message starts. A call to a strict tool (recipient functions.NAME) is held to its
   * parameters; the final channel's message (no recipient) to the response format, once.
   */
  begin(header: { channel?: string; recipient?: string }): void {
    if (this.#state !== null) return;
    const r = header.recipient;
    if (r !== undefined) {
      const plan = r.startsWith('functions.') ? this.plans.tools.get(r.slice('functions.'.length)) : undefined;
      if (plan) this.#start(plan);
    } else if (header.channel === 'final' && this.plans.format?.scope === 'final' && !this.#formatDone) this.#start(this.plans.format);
  }

  /** Harmony: the message ends. */
  end(): void {
    if (this.#state !== null && this.#plan === this.plans.format) this.#formatDone = true;
    this.#plan = null;
    this.#state = null;
  }

  get active(): boolean {
    return this.#state !== null;
  }

  /**
   * A drawn token: an ordinary one goes through the matcher while constrained (a special one ends it, or the
   * message). An Error when the token does not continue the format (a backend that ignored the draw's mask):
   * the generation fails then, it does not go on unconstrained.
   */
  accept(id: number): Error | null {
    if (this.#state !== null && (this.#plan!.scope === 'name' || this.#plan!.scope === 'ctype') && tokenizer.isSpecial(id)) {
      // the name is whole (the mask let the header go on only then): <|constrain|> opens its content type (json),
      // <|message|> the message (a strict tool's plan begins with it)
      const vocab = this.#plan!.masks.vocab;
      this.#plan = null;
      this.#state = null;
      if (id === SPECIAL_TOKENS.constrain) this.#start(textsPlan('ctype', ['json'], [SPECIAL_TOKENS.message], vocab));
      return null;
    }
    if (this.#state === null || tokenizer.isSpecial(id) || id >= this.#plan!.masks.vocab) return null;
    let s: MatchState | undefined = this.#state;
    const bytes = tokenizer.tokenBytes(id);
    if (this.#length + bytes.length > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(2 * this.#bytes.length, this.#length + bytes.length));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
    for (const b of bytes) {
      s = step(s, b);
      if (s === undefined) {
        const scope = this.#plan!.scope;
        const what = scope === 'call' ? 'the strict tool call\'s arguments' : scope === 'name' ? 'one of the tool names tool_choice allows' : 'the response format';
        this.#state = null;
        this.#plan = null;
        this.#formatDone = true;
        return new Error(`structured output: token ${id} (${JSON.stringify(tokenizer.decode([id]))}) does not continue ${what}; was the draw's mask applied?`);
      }
    }
    this.#state = s;
    return null;
  }

  /**
   * null when the next draw's mask is at hand (or the draw is unconstrained); else the promise of it, computed on
   * the mask worker: await it before the draw, so that mask() does not compute it on the event loop.
   */
  pending(): Promise<unknown> | null {
    if (this.#state === null || this.#plan!.masks.cached(this.#state)) return null;
    return this.#plan!.masks.fetch(this.#state, this.#bytes.slice(0, this.#length));
  }

  /** The mask of the next draw (undefined while unconstrained); computed here when pending() was not awaited. */
  mask(): Uint32Array | undefined {
    return this.#state === null ? undefined : this.#plan!.masks.get(this.#state);
  }
}
