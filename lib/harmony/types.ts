/** Types of the Harmony chat format (gpt-oss). */

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

/** The three channels gpt-oss was trained on; other strings are allowed. */
export type Channel = 'analysis' | 'commentary' | 'final' | (string & {});

export type ReasoningEffort = 'low' | 'medium' | 'high';

/** A JSON Schema (OpenAPI flavoured) object describing tool parameters. */
export type JSONSchema = { [key: string]: unknown };

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the single argument object; omitted => `type name = () => any;` */
  parameters?: JSONSchema;
}

/** A namespace of tools (`## name` section, `namespace name { ... }`). */
export interface ToolNamespace {
  name: string;
  /** Namespace description; rendered as `// ` comments when the namespace has tools, as plain lines otherwise. */
  description?: string;
  tools?: ToolDefinition[];
}

export interface SystemOptions {
  /** Default "You are ChatGPT, a large language model trained by OpenAI."; null omits it. */
  modelIdentity?: string | null;
  /** Default 'medium' (as openai/harmony); null omits the line. */
  reasoningEffort?: ReasoningEffort | null;
  /** `Current date: ...` (omitted by default). */
  currentDate?: string | null;
  /** Default '2024-06'; null omits the line. */
  knowledgeCutoff?: string | null;
  /** Valid channels; default ['analysis', 'commentary', 'final']; [] or null omits the line. */
  channels?: readonly string[] | null;
  /** Whether "Channel must be included for every message." is added. Default true. */
  requiredChannels?: boolean;
  /** Add the built-in browser tool namespace. */
  browser?: boolean;
  /** Add the built-in python tool namespace. */
  python?: boolean;
  /** Further tool namespaces declared in the system message. */
  tools?: ToolNamespace[];
}

export interface DeveloperOptions {
  /** Rendered under `# Instructions`. */
  instructions?: string | null;
  /** Function tools (namespace `functions`). */
  tools?: ToolDefinition[];
  /** Further tool namespaces (sorted by name together with `functions`, as openai/harmony does). */
  namespaces?: ToolNamespace[];
}

export interface Message {
  role: Role;
  content: string;
  /** Assistant channel; for tool messages it defaults to the channel of the matching call (else 'commentary'). null: none. */
  channel?: Channel | null;
  /** Tool-call recipient, e.g. 'functions.get_weather'. Tool messages default to 'assistant'. null: none. */
  recipient?: string | null;
  /** 'json' (or '<|constrain|>xxx') renders as ` <|constrain|>json`; anything else as plain ` type`. */
  contentType?: string | null;
  /** Tool messages: the tool's name used as author (e.g. 'functions.get_weather'). Other roles: `role:name`. */
  name?: string;
}

export interface Conversation {
  /** System message options; omitted => default system message; false => no system message. */
  system?: SystemOptions | false;
  /** Developer message; omitted (or nothing to render) => no developer message. */
  developer?: DeveloperOptions;
  messages: Message[];
}

export type DropAnalysisMode = 'harmony' | 'completed-turns' | 'none';

export interface RenderOptions {
  /** Append `<|start|>{role}` for completion. Default true. */
  appendStart?: boolean;
  /** Role for the appended start. Default 'assistant'. */
  nextRole?: Role;
  /**
   * How to drop earlier analysis messages.
   * - 'harmony' (default): openai/harmony's exact rule: if the last assistant message is on the
   *   final channel, drop every analysis message placed before the first final-channel message.
   * - 'completed-turns': drop every analysis message that is followed by a final-channel message.
   * - 'none': keep all analysis messages.
   */
  dropAnalysis?: DropAnalysisMode;
  /**
   * Where the recipient of an assistant tool call goes.
   * - 'channel' (default, as in the format docs): `<|channel|>commentary to=functions.x <|constrain|>json<|message|>`
   * - 'role' (as the openai/harmony renderer): `assistant to=functions.x<|channel|>commentary <|constrain|>json<|message|>`
   * Messages of other roles always carry the recipient after the role.
   */
  recipientPlacement?: 'channel' | 'role';
  /**
   * Training target rendering: no appended start, and if the last message is an assistant
   * final-channel message its trailing `<|end|>` becomes `<|return|>`.
   */
  training?: boolean;
}

export type StopKind = 'end' | 'return' | 'call';

/** The header of a parsed message: everything before `<|message|>`. */
export interface MessageHeader {
  role: Role;
  /** Tool author name (role 'tool'), e.g. 'functions.get_weather', or `role:name`'s name. */
  name?: string;
  channel?: string;
  recipient?: string;
  /** Content type with any `<|constrain|>` marker stripped (e.g. 'json', 'code'). */
  contentType?: string;
  /** Whether the content type was marked with `<|constrain|>`. */
  constrained?: boolean;
}

/** A message as recovered by the parser. */
export interface ParsedMessage extends MessageHeader {
  content: string;
  /** How the message ended; 'eos' if the stream ended inside it, 'interrupted' if cut by `<|start|>`. */
  stop: StopKind | 'eos' | 'interrupted';
}

export type HarmonyEvent =
  | ({ type: 'message-start' } & MessageHeader)
  | { type: 'text'; role: Role; channel?: string; recipient?: string; delta: string }
  | {
      type: 'tool-call';
      /** Full recipient, e.g. 'functions.get_weather' or 'browser.search'. */
      recipient: string;
      /** Recipient without a leading 'functions.' (e.g. 'get_weather'). */
      name: string;
      channel?: string;
      contentType?: string;
      /** Parsed JSON arguments (or the raw string for non-JSON tools such as python). */
      arguments: unknown;
      raw: string;
    }
  | { type: 'tool-call-error'; recipient: string; name: string; channel?: string; raw: string; error: string }
  | ({ type: 'message-end'; content: string; stop: ParsedMessage['stop'] } & MessageHeader)
  | { type: 'return' }
  | { type: 'error'; message: string; token: number | null };

export interface HarmonyParserOptions {
  /** Start in the header state, as after a rendered `<|start|>assistant`. */
  startInHeader?: boolean;
  /** Role of the message whose header we start in (default 'assistant'). */
  role?: Role;
  /** Maximum number of header tokens before the header is abandoned (default 256). */
  maxHeaderTokens?: number;
}
