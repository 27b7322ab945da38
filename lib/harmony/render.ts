/**
 * Harmony renderer: conversation -> token ids (and the equivalent text).
 *
 * Written from the openai/harmony format documentation and renderer behaviour:
 * text pieces are tokenized separately (role, recipient, channel, content type,
 * content), exactly where the reference renderer splits them, so the token ids
 * match token for token, not only the decoded text.
 */
import { tokenizer, SPECIAL_TOKENS, offThreadTexts, withTextsEncoded, type SpecialTokenName } from '../tokenizer.js';
import type {
  Conversation,
  DeveloperOptions,
  Message,
  RenderOptions,
  Role,
  SystemOptions,
  ToolNamespace,
} from './types.js';

export const DEFAULT_MODEL_IDENTITY = 'You are ChatGPT, a large language model trained by OpenAI.';
export const DEFAULT_KNOWLEDGE_CUTOFF = '2024-06';
export const DEFAULT_CHANNELS: readonly string[] = ['analysis', 'commentary', 'final'];
const FUNCTIONS_NOTE = "Calls to these tools must go to the commentary channel: 'functions'.";

export const BROWSER_NAMESPACE: ToolNamespace = {
  name: 'browser',
  description:
    'Tool for browsing.\n' +
    'The `cursor` appears in brackets before each browsing display: `[{cursor}]`.\n' +
    'Cite information from the tool using the following format:\n' +
    '`【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\n' +
    'Do not quote more than 10 words directly from the tool output.\n' +
    'sources=web (default: web)',
  tools: [
    {
      name: 'search',
      description: 'Searches for information related to `query` and displays `topn` results.',
      parameters: {
        type: 'object',
        properties: {
          query: { type: 'string' },
          topn: { type: 'number', default: 10 },
          source: { type: 'string' },
        },
        required: ['query'],
      },
    },
    {
      name: 'open',
      description:
        'Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, showing `num_lines` lines.\n' +
        'Valid link ids are displayed with the formatting: `【{id}†.*】`.\n' +
        'If `cursor` is not provided, the most recent page is implied.\n' +
        'If `id` is a string, it is treated as a fully qualified URL associated with `source`.\n' +
        'If `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on the most relevant passage, if available.\n' +
        'Use this function without `id` to scroll to a new location of an opened page.',
      parameters: {
        type: 'object',
        properties: {
          id: { type: ['number', 'string'], default: -1 },
          cursor: { type: 'number', default: -1 },
          loc: { type: 'number', default: -1 },
          num_lines: { type: 'number', default: -1 },
          view_source: { type: 'boolean', default: false },
          source: { type: 'string' },
        },
      },
    },
    {
      name: 'find',
      description: 'Finds exact matches of `pattern` in the current page, or the page given by `cursor`.',
      parameters: {
        type: 'object',
        properties: {
          pattern: { type: 'string' },
          cursor: { type: 'number', default: -1 },
        },
        required: ['pattern'],
      },
    },
  ],
};

export const PYTHON_NAMESPACE: ToolNamespace = {
  name: 'python',
  description:
    'Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. This tool should be used for internal reasoning, but not for code that is intended to be visible to the user (e.g. when creating plots, tables, or files).\n\n' +
    "When you send a message containing Python code to python, it will be executed in a stateful Jupyter notebook environment. python will respond with the output of the execution or time out after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. Internet access for this session is UNKNOWN. Depends on the cluster.",
  tools: [],
};

// ---------------------------------------------------------------------------
// JSON Schema -> TypeScript-like type (same output as openai/harmony)

type Obj = Record<string, unknown>;

function asObj(v: unknown): Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function isEnum(schema: Obj): boolean {
  return Array.isArray(schema.enum) && schema.enum.length > 0;
}

/** serde_json's compact Display of a JSON value. */
function jsonDisplay(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'null' : s;
}

/** `default: ...` text: non-enum strings quoted raw, enum strings bare (or JSON-quoted when `enumJson`). */
function defaultText(def: unknown, schema: Obj, enumJson: boolean): string {
  if (typeof def === 'string') {
    if (!isEnum(schema)) return `default: "${def}"`;
    return enumJson ? `default: ${jsonDisplay(def)}` : `default: ${def}`;
  }
  return `default: ${jsonDisplay(def)}`;
}

function withNullable(typeStr: string, schema: Obj): string {
  return schema.nullable === true && !typeStr.includes('null') ? `${typeStr} | null` : typeStr;
}

const MAX_SCHEMA_DEPTH = 64;
const schemaPath: object[] = []; // the schemas being rendered, outermost first (the recursion is synchronous)

/** A JSON schema as the TypeScript-like type Harmony's tools section shows. Throws RangeError on a circular or 64-deep schema. */
export function jsonSchemaToTypeScript(schemaIn: unknown, indent = ''): string {
  if (schemaIn !== null && typeof schemaIn === 'object') {
    if (schemaPath.includes(schemaIn)) {
      schemaPath.length = 0;
      throw new RangeError('jsonSchemaToTypeScript: the schema is circular (an object contains itself); JSON schemas here must be trees');
    }
    if (schemaPath.length >= MAX_SCHEMA_DEPTH) {
      schemaPath.length = 0;
      throw new RangeError(`jsonSchemaToTypeScript: the schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
    }
    schemaPath.push(schemaIn);
    try {
      return schemaToTypeScript(schemaIn, indent);
    } finally {
      schemaPath.pop();
    }
  }
  return schemaToTypeScript(schemaIn, indent);
}

function schemaToTypeScript(schemaIn: unknown, indent: string): string {
  const schema = asObj(schemaIn);

  if (Array.isArray(schema.oneOf)) {
    let out = '';
    for (const variantIn of schema.oneOf) {
      const variant = asObj(variantIn);
      out += `\n${indent} | `;
      out += withNullable(jsonSchemaToTypeScript(variantIn, `${indent}   `), variant);
      const trailing: string[] = [];
      const d = str(variant.description);
      if (d !== undefined) trailing.push(d);
      if ('default' in variant) trailing.push(defaultText(variant.default, variant, true));
      if (trailing.length) out += ` // ${trailing.join(' ')}`;
    }
    return out;
  }

  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t): t is string => typeof t === 'string').map((t) => (t === 'integer' ? 'number' : t));
    if (types.length) return types.join(' | ');
  }

  const type = str(schema.type);
  if (type === undefined) return 'any';
  switch (type) {
    case 'object': {
      let out = '';
      const desc = str(schema.description);
      if (desc !== undefined) out += `${indent}// ${desc}\n`;
      out += '{\n';
      const props = schema.properties;
      if (props !== null && typeof props === 'object' && !Array.isArray(props)) {
        const required = new Set(
          Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === 'string') : [],
        );
        for (const [key, valIn] of Object.entries(props as Obj)) {
          const val = asObj(valIn);
          const opt = required.has(key) ? '' : '?';
          const title = str(val.title);
          if (title !== undefined) out += `${indent}// ${title}\n${indent}//\n`;
          if (val.oneOf === undefined) {
            const d = str(val.description);
            if (d !== undefined) out += `${indent}// ${d}\n`;
          }
          if (Array.isArray(val.examples) && val.examples.length > 0) {
            out += `${indent}// Examples:\n`;
            for (const ex of val.examples) {
              if (typeof ex === 'string') out += `${indent}// - "${ex}"\n`;
            }
          }
          if (Array.isArray(val.oneOf)) {
            const variants = val.oneOf;
            const propertyDesc = str(val.description);
            const firstDesc = variants.length ? str(asObj(variants[0]).description) : undefined;
            const skipPropertyDesc = propertyDesc !== undefined && firstDesc !== undefined && propertyDesc === firstDesc;
            let renderedAbove = false;
            if (!skipPropertyDesc && propertyDesc !== undefined) {
              out += `${indent}// ${propertyDesc}\n`;
              renderedAbove = true;
            }
            if ('default' in val) out += `${indent}// ${defaultText(val.default, val, false)}\n`;
            out += `${indent}${key}${opt}:\n`;
            variants.forEach((variantIn, i) => {
              const variant = asObj(variantIn);
              out += `${indent} | `;
              out += withNullable(jsonSchemaToTypeScript(variantIn, `${indent}   `), variant);
              const trailing: string[] = [];
              if (!(i === 0 && renderedAbove)) {
                const vd = str(variant.description);
                if (vd !== undefined && vd !== propertyDesc) trailing.push(vd);
              }
              if ('default' in variant) trailing.push(defaultText(variant.default, variant, false));
              if (trailing.length) out += ` // ${trailing.join(' ')}`;
              out += '\n';
            });
            out += `${indent},\n`;
            continue;
          }
          out += `${indent}${key}${opt}: `;
          out += withNullable(jsonSchemaToTypeScript(valIn, `${indent}    `), val);
          out += ',';
          if (val.oneOf === undefined && 'default' in val) out += ` // ${defaultText(val.default, val, false)}`;
          out += '\n';
        }
      }
      out += `${indent}}`;
      return out;
    }
    case 'string': {
      if (Array.isArray(schema.enum)) {
        const vals = schema.enum.filter((v): v is string => typeof v === 'string').map((v) => `"${v}"`);
        if (vals.length) return vals.join(' | ');
      }
      return 'string';
    }
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return 'items' in schema ? `${jsonSchemaToTypeScript(schema.items, indent)}[]` : 'Array<any>';
    default:
      return 'any';
  }
}

/** Rust's `str::lines()`: split on \n, strip a trailing \r, no final empty line. */
function lines(s: string): string[] {
  if (s === '') return [];
  const out = s.split('\n');
  if (out[out.length - 1] === '') out.pop();
  return out.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** The `# Tools` section for a set of namespaces (sorted by name, as openai/harmony's BTreeMap). */
export function renderToolsSection(namespaces: readonly ToolNamespace[]): string {
  const byName = new Map<string, ToolNamespace>();
  for (const ns of namespaces) byName.set(ns.name, ns);
  const sorted = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const sections = ['# Tools'];
  for (const ns of sorted) {
    const tools = ns.tools ?? [];
    const content: string[] = [`## ${ns.name}\n`];
    if (ns.description !== undefined) {
      for (const line of lines(ns.description)) content.push(tools.length ? `// ${line}` : line);
    }
    if (tools.length) {
      content.push(`namespace ${ns.name} {\n`);
      for (const tool of tools) {
        for (const line of lines(tool.description ?? '')) content.push(`// ${line}`);
        if (tool.parameters !== undefined && tool.parameters !== null) {
          let type: string;
          try {
            type = jsonSchemaToTypeScript(tool.parameters, '');
          } catch (e) {
            if (e instanceof RangeError) throw new RangeError(`tool '${ns.name}.${tool.name}': parameters: ${e.message.replace(/^jsonSchemaToTypeScript: /, '')}`);
            throw e;
          }
          content.push(`type ${tool.name} = (_: ${type}) => any;\n`);
        } else {
          content.push(`type ${tool.name} = () => any;\n`);
        }
      }
      content.push(`} // namespace ${ns.name}`);
    }
    sections.push(content.join('\n'));
  }
  return sections.join('\n\n');
}

function systemNamespaces(sys: SystemOptions): ToolNamespace[] {
  const out: ToolNamespace[] = [];
  if (sys.browser) out.push(BROWSER_NAMESPACE);
  if (sys.python) out.push(PYTHON_NAMESPACE);
  if (sys.tools) out.push(...sys.tools);
  return out;
}

function developerNamespaces(dev: DeveloperOptions): ToolNamespace[] {
  const out: ToolNamespace[] = [...(dev.namespaces ?? [])];
  if (dev.tools && dev.tools.length) out.push({ name: 'functions', tools: dev.tools });
  return out;
}

function hasFunctionTools(dev: DeveloperOptions | undefined): boolean {
  if (!dev) return false;
  return developerNamespaces(dev).some((ns) => ns.name === 'functions' && (ns.tools?.length ?? 0) > 0);
}

/** Content text of the system message. */
export function renderSystemContent(sys: SystemOptions = {}, conversationHasFunctionTools = false): string {
  const sections: string[] = [];
  const top: string[] = [];
  const identity = sys.modelIdentity === undefined ? DEFAULT_MODEL_IDENTITY : sys.modelIdentity;
  const cutoff = sys.knowledgeCutoff === undefined ? DEFAULT_KNOWLEDGE_CUTOFF : sys.knowledgeCutoff;
  if (identity !== null) top.push(identity);
  if (cutoff !== null) top.push(`Knowledge cutoff: ${cutoff}`);
  if (sys.currentDate !== undefined && sys.currentDate !== null) top.push(`Current date: ${sys.currentDate}`);
  if (top.length) sections.push(top.join('\n'));

  const effort = sys.reasoningEffort === undefined ? 'medium' : sys.reasoningEffort;
  if (effort !== null) sections.push(`Reasoning: ${effort}`);

  const ns = systemNamespaces(sys);
  if (ns.length) sections.push(renderToolsSection(ns));

  const channels = sys.channels === undefined ? DEFAULT_CHANNELS : sys.channels;
  if (channels !== null && channels.length) {
    let header = `# Valid channels: ${channels.join(', ')}.`;
    if (sys.requiredChannels ?? true) header += ' Channel must be included for every message.';
    if (conversationHasFunctionTools) header += `\n${FUNCTIONS_NOTE}`;
    sections.push(header);
  }
  return sections.join('\n\n');
}

/** Content text of the developer message. */
export function renderDeveloperContent(dev: DeveloperOptions): string {
  const sections: string[] = [];
  if (dev.instructions !== undefined && dev.instructions !== null) {
    sections.push('# Instructions');
    sections.push(dev.instructions);
  }
  const ns = developerNamespaces(dev);
  if (ns.length) sections.push(renderToolsSection(ns));
  return sections.join('\n\n');
}

// ---------------------------------------------------------------------------
// Segments: a rendering is a list of ordinary-text pieces and special tokens.

type Segment = { text: string } | { special: SpecialTokenName };

class Builder {
  readonly segs: Segment[] = [];
  text(t: string): void {
    if (t !== '') this.segs.push({ text: t });
  }
  special(s: SpecialTokenName): void {
    this.segs.push({ special: s });
  }
}

const CONSTRAIN_TEXT = '<|constrain|>';

function renderContentType(b: Builder, contentType: string): void {
  let rest: string | undefined;
  if (contentType.startsWith(CONSTRAIN_TEXT)) rest = contentType.slice(CONSTRAIN_TEXT.length);
  else if (contentType === 'json') rest = 'json';
  if (rest !== undefined) {
    b.text(' ');
    b.special('constrain');
    b.text(rest);
  } else {
    b.text(` ${contentType}`);
  }
}

interface ResolvedMessage {
  role: Role;
  name?: string;
  channel?: string;
  recipient?: string;
  contentType?: string;
  content: string;
}

function renderMessage(b: Builder, m: ResolvedMessage, placement: 'channel' | 'role'): void {
  b.special('start');
  if (m.role === 'tool') {
    if (!m.name) throw new Error('Tool messages need a name (e.g. "functions.get_weather")');
    b.text(m.name);
  } else {
    b.text(m.role);
    if (m.name) b.text(`:${m.name}`);
  }
  const recipient = m.recipient !== undefined && m.recipient !== 'all' ? m.recipient : undefined;
  const recipientAfterChannel = recipient !== undefined && m.role === 'assistant' && placement === 'channel' && m.channel !== undefined;
  if (recipient !== undefined && !recipientAfterChannel) b.text(` to=${recipient}`);
  if (m.channel !== undefined) {
    b.special('channel');
    b.text(m.channel);
  }
  if (recipientAfterChannel) b.text(` to=${recipient}`);
  if (m.contentType !== undefined) renderContentType(b, m.contentType);
  b.special('message');
  b.text(m.content);
  b.special(m.role === 'assistant' && recipient !== undefined ? 'call' : 'end');
}

const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function resolveMessages(messages: readonly Message[]): ResolvedMessage[] {
  if (!Array.isArray(messages)) throw new TypeError(`renderConversation: conversation.messages must be an array of messages, got ${describe(messages)}`);
  const out: ResolvedMessage[] = [];
  const callChannel = new Map<string, string | undefined>();
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw new TypeError(`renderConversation: messages[${i}] must be a message object {role, content}, got ${describe(m)}`);
    if (typeof m.role !== 'string' || !ROLES.has(m.role))
      throw new TypeError(`renderConversation: messages[${i}].role must be one of ${[...ROLES].join(', ')}, got ${typeof m.role === 'string' ? JSON.stringify(m.role) : describe(m.role)}`);
    if (typeof m.content !== 'string') throw new TypeError(`renderConversation: messages[${i}].content must be a string, got ${describe(m.content)}`);
  });
  for (const m of messages) {
    const r: ResolvedMessage = { role: m.role, content: m.content };
    if (m.name !== undefined) r.name = m.name;
    if (m.contentType !== undefined && m.contentType !== null) r.contentType = m.contentType;
    if (m.role === 'tool') {
      const ch = m.channel === undefined ? (m.name !== undefined && callChannel.has(m.name) ? callChannel.get(m.name) : 'commentary') : m.channel;
      if (ch !== null && ch !== undefined) r.channel = ch;
      const rc = m.recipient === undefined ? 'assistant' : m.recipient;
      if (rc !== null) r.recipient = rc;
    } else {
      if (m.channel !== undefined && m.channel !== null) r.channel = m.channel;
      if (m.recipient !== undefined && m.recipient !== null) r.recipient = m.recipient;
      if (m.role === 'assistant' && r.recipient !== undefined) callChannel.set(r.recipient, r.channel);
    }
    out.push(r);
  }
  return out;
}

function analysisFilter(messages: readonly ResolvedMessage[], mode: RenderOptions['dropAnalysis']): boolean[] {
  const keep = messages.map(() => true);
  if (mode === 'none') return keep;
  if (mode === 'completed-turns') {
    let finalLater = false;
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i]!;
      if (m.channel === 'final' && m.role === 'assistant') finalLater = true;
      else if (m.channel === 'analysis' && finalLater) keep[i] = false;
    }
    return keep;
  }
  // 'harmony' (openai/harmony's render_conversation rule)
  let lastAssistantIsFinal = false;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === 'assistant') {
      lastAssistantIsFinal = messages[i]!.channel === 'final';
      break;
    }
  }
  if (!lastAssistantIsFinal) return keep;
  const firstFinal = messages.findIndex((m) => m.channel === 'final');
  if (firstFinal < 0) return keep;
  for (let i = 0; i < firstFinal; i++) if (messages[i]!.channel === 'analysis') keep[i] = false;
  return keep;
}

function buildSegments(conv: Conversation, opts: RenderOptions = {}): Segment[] {
  const b = new Builder();
  const placement = opts.recipientPlacement ?? 'channel';
  const fnTools = hasFunctionTools(conv.developer);
  if (conv.system !== false) {
    renderMessage(b, { role: 'system', content: renderSystemContent(conv.system ?? {}, fnTools) }, placement);
  }
  if (conv.developer) {
    const dev = conv.developer;
    const hasContent =
      (dev.instructions !== undefined && dev.instructions !== null) || developerNamespaces(dev).length > 0;
    if (hasContent) renderMessage(b, { role: 'developer', content: renderDeveloperContent(dev) }, placement);
  }
  const msgs = resolveMessages(conv.messages);
  const keep = analysisFilter(msgs, opts.dropAnalysis ?? 'harmony');
  msgs.forEach((m, i) => {
    if (keep[i]) renderMessage(b, m, placement);
  });
  if (opts.training) {
    const last = msgs[msgs.length - 1];
    const lastSeg = b.segs[b.segs.length - 1];
    if (last && last.role === 'assistant' && last.channel === 'final' && lastSeg && 'special' in lastSeg) {
      b.segs[b.segs.length - 1] = { special: 'return' };
    }
  } else if (opts.appendStart ?? true) {
    b.special('start');
    b.text(opts.nextRole ?? 'assistant');
  }
  return b.segs;
}

function segmentsToTokens(segs: readonly Segment[]): number[] {
  const out: number[] = [];
  for (const s of segs) {
    if ('special' in s) out.push(SPECIAL_TOKENS[s.special]);
    else for (const id of tokenizer.encode(s.text)) out.push(id);
  }
  return out;
}

function segmentsToText(segs: readonly Segment[]): string {
  let out = '';
  for (const s of segs) out += 'special' in s ? `<|${s.special}|>` : s.text;
  return out;
}

/** Renders a conversation to token ids (by default ending with `<|start|>assistant`). */
export function renderConversation(conv: Conversation, opts?: RenderOptions): number[] {
  return segmentsToTokens(buildSegments(conv, opts));
}

/** @internal The ordinary-text runs renderConversation(conv, opts) encodes, in order. */
export function conversationTexts(conv: Conversation, opts?: RenderOptions): string[] {
  return buildSegments(conv, opts).flatMap((s) => ('text' in s ? [s.text] : []));
}

/**
 * renderConversation without blocking the event loop: the same ids; when the texts are long
 * (a pasted document), they are encoded on the tokenizer's worker thread first.
 */
export async function renderConversationAsync(conv: Conversation, opts?: RenderOptions): Promise<number[]> {
  const segs = buildSegments(conv, opts);
  const long = offThreadTexts(segs.flatMap((s) => ('text' in s ? [s.text] : [])));
  return long ? withTextsEncoded(long, () => segmentsToTokens(segs)) : segmentsToTokens(segs);
}

/** The same rendering as text with special tokens spelled out; equals `tokenizer.decode(renderConversation(conv, opts))`. */
export function renderConversationText(conv: Conversation, opts?: RenderOptions): string {
  return segmentsToText(buildSegments(conv, opts));
}

/** Renders one message (no system/developer, no analysis dropping). */
export function renderMessageTokens(message: Message, opts: Pick<RenderOptions, 'recipientPlacement'> = {}): number[] {
  const b = new Builder();
  renderMessage(b, resolveMessages([message])[0]!, opts.recipientPlacement ?? 'channel');
  return segmentsToTokens(b.segs);
}

