// What the two APIs share: the model name check, max-token resolution against the context limit,
// and starting a turn on the engine. Nothing here knows HTTP.
import type { Engine } from '../engine/scheduler.js';
import type { GenerationStream } from '../generate.js';
import type { Seed } from '../sampling.js';
import type { ToolDefinition } from '../harmony/index.js';
import { ApiError, badParam, toApiError } from './errors.js';
import { compiledSchema, SchemaError, type ResponseFormat } from '../grammar/constraint.js';
import type { HarmonyRequest } from './conversation.js';
import type { ServerMetrics } from './metrics.js';
import type { ResponseStore } from './response-store.js';

export interface ServeContext {
  engine: Engine;
  /** The id clients name in `model` (and GET /v1/models lists). */
  modelName: string;
  /** Unix seconds when the server started (the model's `created`). */
  created: number;
  /** GET /metrics' counters (every generation a turn starts is counted when it ends). */
  metrics: ServerMetrics;
  /** The Responses API's stored responses (previous_response_id, GET / DELETE /v1/responses/{id}). */
  responses: ResponseStore;
}

export function checkModel(ctx: ServeContext, model: string): void {
  if (model !== ctx.modelName)
    throw new ApiError(404, `The model '${model}' does not exist (this server serves '${ctx.modelName}')`, 'invalid_request_error', 'model', 'model_not_found');
}

/**
 * Parameters this server does not implement, refused unless they are at their neutral value: a client that asks for
 * fill-in-the-middle gets a 400 naming the parameter (code `unsupported_parameter`), never an answer that silently
 * ignores it. `values` maps each name as the client sent it to its value; neutral: null or absent, false, 0.
 */
export function refuseUnsupported(values: Record<string, unknown>): void {
  const why: Record<string, string> = {
    suffix: 'there is no fill-in-the-middle: the completion continues the prompt only',
  };
  for (const [param, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === false || v === 0) continue;
    throw badParam(param, `${param} is not supported: ${why[param] ?? 'not implemented'}`, 'unsupported_parameter');
  }
}

/**
 * Completion tokens to allow: the request's, or whatever the context leaves (as vLLM). A prompt
 * that leaves no room, or prompt + max tokens beyond the context, is a 400 stating the limits.
 */
export function resolveMaxTokens(ctx: ServeContext, promptTokens: number, requested: number | null | undefined, param: string, inputParam: string): number {
  const limit = ctx.engine.maxContext;
  if (promptTokens >= limit)
    throw new ApiError(
      400,
      `This model's maximum context length is ${limit} tokens. However, your ${inputParam} resulted in ${promptTokens} tokens, which leaves no room for a completion. Please reduce the length of the ${inputParam}.`,
      'invalid_request_error',
      inputParam,
      'context_length_exceeded',
    );
  if (requested === null || requested === undefined) return limit - promptTokens;
  if (promptTokens + requested > limit)
    throw new ApiError(
      400,
      `This model's maximum context length is ${limit} tokens. However, you requested ${promptTokens + requested} tokens (${promptTokens} in the ${inputParam}, ${requested} in the completion). Please reduce the length of the ${inputParam} or ${param}.`,
      'invalid_request_error',
      param,
      'context_length_exceeded',
    );
  return requested;
}

export function functionTools(tools: { name: string; description?: string | null; parameters?: Record<string, unknown> | null }[]): ToolDefinition[] {
  const seen = new Set<string>();
  return tools.map((t, i) => {
    if (seen.has(t.name)) throw badParam(`tools[${i}]`, `tools[${i}]: function '${t.name}' is declared twice`);
    seen.add(t.name);
    return { name: t.name, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters } : {}) };
  });
}

/**
 * The function tools sent with strict: true, as generate()'s strictTools ({ name: parameters }); undefined for none.
 * A schema it cannot enforce is a 400 invalid_schema naming where it is (`paramOf(i)`), never a silent free call.
 */
export function strictTools(tools: readonly { name: string; parameters?: Record<string, unknown> | null; strict?: boolean | null }[], paramOf: (i: number) => string): Record<string, Record<string, unknown> | null> | undefined {
  const out: Record<string, Record<string, unknown> | null> = {};
  tools.forEach((t, i) => {
    if (t.strict !== true) return;
    if (t.parameters !== undefined && t.parameters !== null) {
      try {
        compiledSchema(t.parameters, 'tool'); // compiled once here and cached: generate() takes it from the cache
      } catch (e) {
        if (e instanceof SchemaError) throw badParam(paramOf(i), `${paramOf(i)} cannot be enforced (strict: true): ${e.message}`, 'invalid_schema');
        throw e;
      }
    }
    out[t.name] = t.parameters ?? null;
  });
  return Object.keys(out).length > 0 ? out : undefined;
}

export interface TurnRequest {
  /** The prompt's token ids: a rendered Harmony conversation (parse: true), or a raw prompt (/v1/completions). */
  harmony: Pick<HarmonyRequest, 'prompt' | 'callNames'>;
  /** Harmony events (the chat and Responses APIs) or raw text (/v1/completions); default true. */
  parse?: boolean;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: Seed;
  /** Report each token's log-probability and this many alternatives (undefined: none). */
  logprobs?: number;
  /** Structured output (responseFormat()). */
  format?: ResponseFormat;
  /** Strict function tools (strictTools()): their calls' arguments held to their parameters. */
  strictTools?: Record<string, Record<string, unknown> | null>;
  /** OpenAI's logit_bias ({ "token id": bias }), presence_penalty and frequency_penalty, as the client sent them. */
  logitBias?: Record<string, number> | null;
  presencePenalty?: number | null;
  frequencyPenalty?: number | null;
  signal: AbortSignal;
}

/**
 * A request's structured-output format (chat's response_format, the Responses API's text.format) as generate()'s
 * responseFormat, compiled now so that a schema it cannot enforce is a 400 naming `param` (code invalid_schema), never
 * free text. undefined: text.
 */
export function responseFormat(
  format: { type: string; json_schema?: { schema?: unknown }; schema?: unknown } | null | undefined,
  param: string,
  schemaOf: (f: { json_schema?: { schema?: unknown }; schema?: unknown }) => unknown,
  schemaParam: string,
): ResponseFormat | undefined {
  if (format === null || format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type !== 'json_schema') throw badParam(`${param}.type`, `${param}.type must be 'text', 'json_object' or 'json_schema', got '${format.type}'`, 'invalid_value');
  const schema = schemaOf(format);
  if (schema === undefined || schema === null) throw badParam(schemaParam, `${schemaParam} is required for type 'json_schema'`, 'missing_required_parameter');
  try {
    compiledSchema(schema); // compiled once here and cached: generate() takes it from the cache
  } catch (e) {
    if (e instanceof SchemaError) throw badParam(schemaParam, `${schemaParam} cannot be enforced: ${e.message}`, 'invalid_schema');
    throw e;
  }
  return { type: 'json_schema', schema: schema as Record<string, unknown> };
}

/** logit_bias's keys as token ids of this model (a 400 naming logit_bias otherwise; the values' range is the schema's). */
export function checkLogitBias(ctx: ServeContext, bias: Record<string, number> | null | undefined): void {
  const vocab = ctx.engine.model.config.vocabSize;
  for (const key of Object.keys(bias ?? {}))
    if (!/^\d+$/.test(key) || Number(key) >= vocab)
      throw badParam('logit_bias', `logit_bias key '${key}' is not a token id of this model (0 to ${vocab - 1})`);
}

/** A generation that ended in an error, as the API's 500 (null when it did not fail). */
export function failure(r: { finishReason: string; error?: Error }): ApiError | null {
  if (r.finishReason !== 'error') return null;
  return new ApiError(500, `generation failed: ${r.error?.message ?? 'unknown error'}`, 'server_error');
}

/** A request's `stop` (a string or up to 4) as a list; an empty string is a 400. */
export function stopStrings(stop: string | string[] | null | undefined): string[] {
  const stops = stop === null || stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop;
  if (stops.some((x) => x === '')) throw badParam('stop', "'stop' strings must not be empty");
  return stops;
}

/**
 * Choice c's seed when a request asks for several (`n`): the request's seed + c, so choice 0 is what one choice
 * gives; none when the request has none (each choice then draws its own random seed).
 */
export function choiceSeed(seed: number | null | undefined, c: number): Seed | undefined {
  if (seed === null || seed === undefined) return undefined;
  return c === 0 ? seed : BigInt(seed) + BigInt(c);
}

/** Starts every turn of a request (its choices); a refusal of any cancels those already started: nothing is half-admitted. */
export function startTurns(ctx: ServeContext, requests: TurnRequest[], inputParam: string): GenerationStream[] {
  const streams: GenerationStream[] = [];
  try {
    for (const r of requests) streams.push(startTurn(ctx, r, inputParam));
  } catch (e) {
    for (const s of streams) s.abort();
    throw e;
  }
  return streams;
}

/** Starts the turn on the engine; refusals (queue full, shutting down, context) as ApiErrors. */
export function startTurn(ctx: ServeContext, r: TurnRequest, inputParam: string): GenerationStream {
  let stream: GenerationStream;
  try {
    stream = ctx.engine.generate(r.harmony.prompt, {
      parse: r.parse ?? true,
      maxTokens: r.maxTokens,
      temperature: r.temperature,
      topP: r.topP,
      ...(r.seed !== undefined ? { seed: r.seed } : {}),
      ...(r.logprobs !== undefined ? { logprobs: r.logprobs } : {}),
      ...(r.logitBias ? { logitBias: r.logitBias } : {}),
      ...(r.format ? { responseFormat: r.format } : {}),
      ...(r.strictTools ? { strictTools: r.strictTools } : {}),
      ...(r.harmony.callNames ? { toolChoiceNames: r.harmony.callNames } : {}),
      ...(r.presencePenalty ? { presencePenalty: r.presencePenalty } : {}),
      ...(r.frequencyPenalty ? { frequencyPenalty: r.frequencyPenalty } : {}),
      signal: r.signal,
    });
  } catch (e) {
    throw toApiError(e, inputParam);
  }
  void stream.result.then((res) => ctx.metrics.generation(res));  // never rejects (failures are finishReason 'error')
  return stream;
}
