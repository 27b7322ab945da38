// OpenAI requests (Chat Completions messages, Responses input items) as a Harmony conversation.
//
// Following openai/harmony's guidance and vLLM's gpt-oss path: the Harmony system message is the
// model's own (identity, reasoning effort, channels); the API's system and developer messages become
// the developer message's instructions; function tools are declared in the developer message's
// `functions` namespace; an assistant tool call is a commentary message to=functions.NAME with
// `<|constrain|>json` content; a tool result is a message from the tool `functions.NAME`;
// earlier reasoning is an analysis message (dropped from history by the renderer as Harmony says).
import { renderConversationAsync, renderMessageTokens, type Conversation, type Message, type ReasoningEffort, type ToolDefinition } from '../harmony/index.js';
import { SPECIAL_TOKENS, tokenizer } from '../tokenizer.js';
import { badParam } from './errors.js';
import type { ChatMessageParam, ContentPart, ResponseInputItem } from './protocol.js';

export interface HarmonyRequest {
  conversation: Conversation;
  /** Tokens appended after `<|start|>assistant` to force a tool call (tool_choice), else []. */
  forced: number[];
  /** The whole prompt: the rendered conversation plus `forced`. */
  prompt: number[];
  /** tool_choice 'required' with several tools: the names the forced header (ending `to=functions.`) completes with. */
  callNames?: string[];
}

export type ToolChoiceSpec = 'none' | 'auto' | 'required' | { name: string };

/** Text of a message's content: a string or text parts (other parts are refused, naming them). */
export function contentText(content: string | ContentPart[] | null | undefined, param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part, i) => {
      if ((part.type === 'text' || part.type === 'input_text' || part.type === 'output_text') && typeof part.text === 'string') return part.text;
      throw badParam(`${param}[${i}].type`, `${param}[${i}]: content part of type '${part.type}' is not supported (this model takes text only)`);
    })
    .join('');
}

export function effortOf(effort: string | null | undefined): ReasoningEffort | undefined {
  if (effort === null || effort === undefined) return undefined;
  return effort === 'minimal' ? 'low' : (effort as ReasoningEffort);
}

/**
 * The conversation plus, for tool_choice 'required' or a named function, the start of the assistant
 * message that makes it a call: `<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`
 * (the model writes the arguments), as the renderer writes a call; for 'required' with several tools
 * the header stops after `to=functions.` and the model names the function, held to the declared names (callNames).
 */
export async function buildPrompt(
  instructions: string[],
  tools: ToolDefinition[],
  messages: Message[],
  effort: ReasoningEffort | undefined,
  toolChoice: ToolChoiceSpec,
  toolChoiceParam: string,
): Promise<HarmonyRequest> {
  const declared = toolChoice === 'none' ? [] : tools;
  if (toolChoice !== 'none' && toolChoice !== 'auto') {
    if (tools.length === 0) throw badParam(toolChoiceParam, `${toolChoiceParam} asks for a tool call but no tools were given`);
    if (typeof toolChoice === 'object' && !tools.some((t) => t.name === toolChoice.name))
      throw badParam(toolChoiceParam, `${toolChoiceParam} names function '${toolChoice.name}', which is not among the tools (${tools.map((t) => t.name).join(', ')})`);
  }
  const instr = instructions.filter((s) => s.trim() !== '').join('\n\n');
  const conversation: Conversation = {
    system: effort !== undefined ? { reasoningEffort: effort } : {},
    ...(instr !== '' || declared.length > 0 ? { developer: { ...(instr !== '' ? { instructions: instr } : {}), ...(declared.length > 0 ? { tools: declared } : {}) } } : {}),
    messages,
  };
  const rendered = await renderConversationAsync(conversation); // long texts: off the event loop
  let forced: number[] = [];
  const name = typeof toolChoice === 'object' ? toolChoice.name : toolChoice === 'required' && tools.length === 1 ? tools[0]!.name : undefined;
  if (name !== undefined) {
    // the renderer's own tokens for such a call, up to and including <|message|>
    const call = renderMessageTokens({ role: 'assistant', channel: 'commentary', recipient: `functions.${name}`, contentType: '<|constrain|>json', content: '' });
    const afterRole = call.indexOf(SPECIAL_TOKENS.channel);
    forced = call.slice(afterRole, call.lastIndexOf(SPECIAL_TOKENS.message) + 1);
  } else if (toolChoice === 'required') {
    forced = [SPECIAL_TOKENS.channel, ...tokenizer.encode('commentary to=functions.')];
    // the model names the function; its draws are held to the declared names (generate()'s toolChoiceNames)
    return { conversation, forced, prompt: [...rendered, ...forced], callNames: tools.map((t) => t.name) };
  }
  return { conversation, forced, prompt: forced.length > 0 ? [...rendered, ...forced] : rendered };
}

/** Chat Completions messages as Harmony messages (system/developer text goes to `instructions`). */
export function chatMessages(params: ChatMessageParam[]): { instructions: string[]; messages: Message[] } {
  const instructions: string[] = [];
  const messages: Message[] = [];
  const callNames = new Map<string, string>();
  params.forEach((m, i) => {
    const at = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        instructions.push(contentText(m.content, `${at}.content`));
        break;
      case 'user':
        messages.push({ role: 'user', content: contentText(m.content, `${at}.content`) });
        break;
      case 'assistant': {
        const reasoning = m.reasoning_content ?? m.reasoning;
        if (reasoning) messages.push({ role: 'assistant', channel: 'analysis', content: reasoning });
        const text = contentText(m.content, `${at}.content`);
        if (text !== '' || !m.tool_calls?.length) messages.push({ role: 'assistant', channel: 'final', content: text });
        for (const call of m.tool_calls ?? []) {
          if (call.id !== undefined) callNames.set(call.id, call.function.name);
          messages.push({ role: 'assistant', channel: 'commentary', recipient: `functions.${call.function.name}`, contentType: '<|constrain|>json', content: call.function.arguments });
        }
        break;
      }
      case 'tool': {
        const id = m.tool_call_id;
        if (id === undefined) throw badParam(`${at}.tool_call_id`, `${at}: a tool message needs tool_call_id`, 'missing_required_parameter');
        const name = callNames.get(id) ?? m.name;
        if (name === undefined) throw badParam(`${at}.tool_call_id`, `${at}: tool_call_id '${id}' matches no earlier assistant tool call`);
        messages.push({ role: 'tool', name: `functions.${name}`, content: contentText(m.content, `${at}.content`) });
        break;
      }
    }
  });
  return { instructions, messages };
}

/** Responses input items as Harmony messages. */
export function responseItems(input: string | ResponseInputItem[]): { instructions: string[]; messages: Message[] } {
  if (typeof input === 'string') return { instructions: [], messages: [{ role: 'user', content: input }] };
  const instructions: string[] = [];
  const messages: Message[] = [];
  const callNames = new Map<string, string>();
  input.forEach((item, i) => {
    const at = `input[${i}]`;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const m = item as Extract<ResponseInputItem, { role: string }>;
      if (m.role === undefined) throw badParam(`${at}.role`, `${at}: a message needs a role`, 'missing_required_parameter');
      const text = contentText(m.content, `${at}.content`);
      if (m.role === 'system' || m.role === 'developer') instructions.push(text);
      else if (m.role === 'user') messages.push({ role: 'user', content: text });
      else messages.push({ role: 'assistant', channel: 'final', content: text });
    } else if (type === 'function_call') {
      const c = item as Extract<ResponseInputItem, { type: 'function_call' }>;
      if (typeof c.name !== 'string' || typeof c.call_id !== 'string' || typeof c.arguments !== 'string')
        throw badParam(at, `${at}: a function_call item needs call_id, name and arguments (strings)`, 'missing_required_parameter');
      callNames.set(c.call_id, c.name);
      messages.push({ role: 'assistant', channel: 'commentary', recipient: `functions.${c.name}`, contentType: '<|constrain|>json', content: c.arguments });
    } else if (type === 'function_call_output') {
      const o = item as Extract<ResponseInputItem, { type: 'function_call_output' }>;
      const name = callNames.get(o.call_id);
      if (name === undefined) throw badParam(`${at}.call_id`, `${at}: call_id '${o.call_id}' matches no earlier function_call item`);
      messages.push({ role: 'tool', name: `functions.${name}`, content: contentText(o.output, `${at}.output`) });
    } else if (type === 'reasoning') {
      const r = item as Extract<ResponseInputItem, { type: 'reasoning' }>;
      const text = (r.content ?? []).map((c) => c.text).join('');
      if (text !== '') messages.push({ role: 'assistant', channel: 'analysis', content: text });
    }
  });
  return { instructions, messages };
}
