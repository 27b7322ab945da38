// The OpenAI wire protocol: request bodies (types and the JSON schemas Fastify validates them with)
// and the response objects this server writes. Field names follow the OpenAI API reference and
// openai-node's types; the reasoning fields follow vLLM (`reasoning_content`) and OpenRouter
// (`reasoning`) for gpt-oss.

// ------------------------------------------------------------------------------------------------
// Chat Completions
// ------------------------------------------------------------------------------------------------

export type ContentPart = { type: 'text'; text: string } | { type: string; [k: string]: unknown };

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessageParam {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  reasoning_content?: string | null;
  reasoning?: string | null;
}

export interface FunctionToolParam {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** The sampling and streaming fields of both completion APIs (chat and text): samplingProperties' types. */
interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  n?: number | null;
}

/** OpenAI's penalties and logit bias (lib/penalties.ts), on the tokens drawn so far: penaltyProperties' types. */
interface PenaltyFields {
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
}

export interface ChatCompletionRequest extends SamplingFields, PenaltyFields {
  model: string;
  messages: ChatMessageParam[];
  tools?: FunctionToolParam[];
  tool_choice?: ToolChoice;
  reasoning_effort?: 'minimal' | 'low' | 'medium' | 'high' | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  /** The answer tokens' log-probabilities (choices[].logprobs.content), with top_logprobs (0-20) alternatives each. */
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  /**
   * Structured output: { type: 'text' | 'json_object' } or { type: 'json_schema', json_schema: { name, schema, strict } }
   * (serving.ts responseFormat; the answer, the final channel, is held to it token by token).
   */
  response_format?: { type: string; json_schema?: { name?: string; schema?: Record<string, unknown>; strict?: boolean | null } } | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export type ChatFinishReason = 'stop' | 'length' | 'tool_calls';

const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({ anyOf: [schema, { type: 'null' }] });
const textParts = { type: 'array', items: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, text: { type: 'string' } } } };
const content = nullable({ anyOf: [{ type: 'string' }, textParts] });

// The sampling and streaming fields both completion APIs (chat and text) take, and the penalties and logit bias both
// apply (lib/penalties.ts).
const samplingProperties = {
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
    seed: nullable({ type: 'integer' }),
    stop: nullable({ anyOf: [{ type: 'string' }, { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1 } }] }),
    stream: nullable({ type: 'boolean' }),
    stream_options: nullable({ type: 'object', properties: { include_usage: { type: 'boolean' } } }),
    n: nullable({ type: 'integer', minimum: 1, maximum: 16 }),
} as const;
const penaltyProperties = {
    presence_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
    frequency_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
    logit_bias: nullable({ type: 'object', additionalProperties: { type: 'number', minimum: -100, maximum: 100 } }),
} as const;

export const chatCompletionSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1 },
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content,
          name: { type: 'string' },
          tool_call_id: { type: 'string' },
          reasoning_content: nullable({ type: 'string' }),
          reasoning: nullable({ type: 'string' }),
          tool_calls: nullable({
            type: 'array',
            items: {
              type: 'object',
              required: ['function'],
              properties: {
                id: { type: 'string' },
                type: { const: 'function' },
                function: {
                  type: 'object',
                  required: ['name', 'arguments'],
                  properties: { name: { type: 'string', minLength: 1 }, arguments: { type: 'string' } },
                },
              },
            },
          }),
        },
      },
    },
    tools: nullable({
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'function'],
        properties: {
          type: { const: 'function' },
          function: {
            type: 'object',
            required: ['name'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
              description: { type: 'string' },
              parameters: { type: 'object' },
              strict: nullable({ type: 'boolean' }),
            },
          },
        },
      },
    }),
    tool_choice: nullable({
      anyOf: [
        { enum: ['none', 'auto', 'required'] },
        { type: 'object', required: ['type', 'function'], properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } },
      ],
    }),
    reasoning_effort: nullable({ enum: ['minimal', 'low', 'medium', 'high'] }),
    max_tokens: nullable({ type: 'integer', minimum: 1 }),
    max_completion_tokens: nullable({ type: 'integer', minimum: 1 }),
    ...samplingProperties,
    logprobs: nullable({ type: 'boolean' }),
    top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
    response_format: nullable({ type: 'object', required: ['type'], properties: { type: { type: 'string' } } }),
    ...penaltyProperties,
  },
} as const;

// ------------------------------------------------------------------------------------------------
// Responses
// ------------------------------------------------------------------------------------------------

export interface ResponsesFunctionTool {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

export type ResponseInputItem =
  | { type?: 'message'; role: 'user' | 'system' | 'developer' | 'assistant'; content: string | ContentPart[] }
  | { type: 'function_call'; call_id: string; name: string; arguments: string; id?: string }
  | { type: 'function_call_output'; call_id: string; output: string | ContentPart[] }
  | { type: 'reasoning'; id?: string; content?: { type: string; text: string }[]; summary?: { type: string; text: string }[] };

export interface ResponsesRequest {
  model: string;
  input: string | ResponseInputItem[];
  instructions?: string | null;
  tools?: ResponsesFunctionTool[];
  tool_choice?: 'none' | 'auto' | 'required' | { type: 'function'; name: string };
  reasoning?: { effort?: 'minimal' | 'low' | 'medium' | 'high' | null } | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stream?: boolean | null;
  previous_response_id?: string | null;
  metadata?: Record<string, string> | null;
  seed?: number | null;
  /** Keep the response for previous_response_id and GET /v1/responses/{id} (default true; in memory). */
  store?: boolean | null;
  /** 'auto': drop the oldest turns when the conversation does not fit the context; 'disabled' (default): a 400. */
  truncation?: 'auto' | 'disabled' | null;
  /** Structured output, the Responses way: { format: { type: 'json_schema', name, schema, strict } }, or json_object, or text. */
  text?: { format?: { type: string; name?: string; schema?: Record<string, unknown>; strict?: boolean | null } | null } | null;
  /** With include 'message.output_text.logprobs': the alternatives reported beside each token (0-20). */
  top_logprobs?: number | null;
  /** 'message.output_text.logprobs': the answer tokens' log-probabilities (other values are accepted and have no effect). */
  include?: string[] | null;
}

export const responsesSchema = {
  type: 'object',
  required: ['model', 'input'],
  properties: {
    model: { type: 'string', minLength: 1 },
    input: {
      anyOf: [
        { type: 'string' },
        {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              type: { enum: ['message', 'function_call', 'function_call_output', 'reasoning'] },
              role: { enum: ['user', 'system', 'developer', 'assistant'] },
              content: { anyOf: [{ type: 'string' }, textParts] },
              call_id: { type: 'string' },
              name: { type: 'string' },
              arguments: { type: 'string' },
              output: { anyOf: [{ type: 'string' }, textParts] },
            },
          },
        },
      ],
    },
    instructions: nullable({ type: 'string' }),
    tools: nullable({
      type: 'array',
      items: {
        type: 'object',
        required: ['type'],
        properties: {
          type: { type: 'string' },
          name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
          description: nullable({ type: 'string' }),
          parameters: nullable({ type: 'object' }),
          strict: nullable({ type: 'boolean' }),
        },
      },
    }),
    tool_choice: nullable({
      anyOf: [{ enum: ['none', 'auto', 'required'] }, { type: 'object', required: ['type', 'name'], properties: { type: { const: 'function' }, name: { type: 'string' } } }],
    }),
    reasoning: nullable({ type: 'object', properties: { effort: nullable({ enum: ['minimal', 'low', 'medium', 'high'] }) } }),
    max_output_tokens: nullable({ type: 'integer', minimum: 1 }),
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
    stream: nullable({ type: 'boolean' }),
    previous_response_id: nullable({ type: 'string' }),
    seed: nullable({ type: 'integer' }),
    store: nullable({ type: 'boolean' }),
    truncation: nullable({ enum: ['auto', 'disabled'] }),
    text: nullable({ type: 'object', properties: { format: nullable({ type: 'object', required: ['type'], properties: { type: { type: 'string' } } }) } }),
    top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
    include: nullable({ type: 'array', items: { type: 'string' } }),
  },
} as const;

// ------------------------------------------------------------------------------------------------
// Completions (the legacy text API)
// ------------------------------------------------------------------------------------------------

export interface CompletionRequest extends SamplingFields, PenaltyFields {
  model: string;
  prompt: string | string[] | number[] | number[][];
  max_tokens?: number | null;
  echo?: boolean | null;
  best_of?: number | null;
  /** Each token's log-probability and this many alternatives (0-5); not with echo. */
  logprobs?: number | null;
  // Accepted only at its neutral value (serving.ts refuseUnsupported).
  suffix?: string | null;
}

const tokenIds = { type: 'array', minItems: 1, items: { type: 'integer' } };
export const completionSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    model: { type: 'string', minLength: 1 },
    prompt: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string' } }, tokenIds, { type: 'array', minItems: 1, maxItems: 64, items: tokenIds }] },
    max_tokens: nullable({ type: 'integer', minimum: 1 }),
    ...samplingProperties,
    echo: nullable({ type: 'boolean' }),
    best_of: nullable({ type: 'integer', minimum: 1, maximum: 16 }),
    logprobs: nullable({ type: 'integer', minimum: 0, maximum: 5 }),
    suffix: nullable({ type: 'string' }),
    ...penaltyProperties,
  },
} as const;
