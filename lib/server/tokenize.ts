// POST /tokenize and /detokenize, vLLM's token-counting endpoints (same paths and fields): a client counts what a
// prompt or a conversation costs against the context before it sends it. `prompt` is encoded as /v1/completions
// encodes it (special-token text as the special tokens); `messages` are rendered as /v1/chat/completions renders
// them (the prompt ends in `<|start|>assistant`, as the model is asked).
import { tokenizer } from '../tokenizer.js';
import { badParam } from './errors.js';
import { buildPrompt, chatMessages, effortOf } from './conversation.js';
import type { ChatMessageParam, FunctionToolParam } from './protocol.js';
import { checkModel, functionTools, type ServeContext } from './serving.js';

export interface TokenizeRequest {
  model?: string | null;
  prompt?: string | null;
  messages?: ChatMessageParam[] | null;
  tools?: FunctionToolParam[] | null;
  reasoning_effort?: 'minimal' | 'low' | 'medium' | 'high' | null;
}

export interface DetokenizeRequest {
  model?: string | null;
  tokens: number[];
}

export async function tokenize(ctx: ServeContext, body: TokenizeRequest): Promise<Record<string, unknown>> {
  if (body.model !== null && body.model !== undefined) checkModel(ctx, body.model);
  const hasPrompt = body.prompt !== null && body.prompt !== undefined, hasMessages = body.messages !== null && body.messages !== undefined;
  if (hasPrompt === hasMessages) throw badParam(hasPrompt ? 'messages' : 'prompt', 'give either prompt (text) or messages (a conversation), not both or neither', 'missing_required_parameter');
  let tokens: number[];
  if (hasPrompt) {
    tokens = await tokenizer.encodeAsync(body.prompt!, { allowSpecial: 'all' });
  } else {
    const { instructions, messages } = chatMessages(body.messages!);
    const tools = functionTools((body.tools ?? []).map((t) => t.function));
    tokens = (await buildPrompt(instructions, tools, messages, effortOf(body.reasoning_effort), 'auto', 'tool_choice')).prompt;
  }
  return { count: tokens.length, max_model_len: ctx.engine.maxContext, tokens };
}

export function detokenize(ctx: ServeContext, body: DetokenizeRequest): Record<string, unknown> {
  if (body.model !== null && body.model !== undefined) checkModel(ctx, body.model);
  const bad = body.tokens.findIndex((id) => !tokenizer.isValidId(id));
  if (bad >= 0) throw badParam(`tokens[${bad}]`, `tokens[${bad}] = ${body.tokens[bad]} is not a token id (0 to ${tokenizer.vocabSize - 1})`);
  return { prompt: tokenizer.decode(body.tokens) };
}

export const tokenizeSchema = {
  type: 'object',
  properties: {
    model: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }] },
    prompt: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    messages: { anyOf: [{ type: 'array', minItems: 1 }, { type: 'null' }] },
    tools: { anyOf: [{ type: 'array' }, { type: 'null' }] },
    reasoning_effort: { anyOf: [{ enum: ['minimal', 'low', 'medium', 'high'] }, { type: 'null' }] },
  },
} as const;

export const detokenizeSchema = {
  type: 'object',
  required: ['tokens'],
  properties: {
    model: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }] },
    tokens: { type: 'array', items: { type: 'integer' } },
  },
} as const;
