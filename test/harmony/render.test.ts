import { describe, expect, test } from 'vitest';
import { tokenizer } from '../../lib/tokenizer.js';
import {
  renderConversation,
  renderConversationText,
  renderMessageTokens,
  jsonSchemaToTypeScript,
  type Conversation,
  type ToolDefinition,
} from '../../lib/harmony/index.js';

const enc = (s: string) => tokenizer.encode(s);
const S = tokenizer.specialTokens;

const SYSTEM_HIGH_FN =
  '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
  'Knowledge cutoff: 2024-06\n' +
  'Current date: 2025-06-28\n' +
  '\n' +
  'Reasoning: high\n' +
  '\n' +
  '# Valid channels: analysis, commentary, final. Channel must be included for every message.\n' +
  "Calls to these tools must go to the commentary channel: 'functions'.<|end|>";

const WEATHER_TOOLS: ToolDefinition[] = [
  { name: 'get_location', description: 'Gets the location of the user.' },
  {
    name: 'get_current_weather',
    description: 'Gets the current weather in the provided location.',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
        format: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' },
      },
      required: ['location'],
    },
  },
  {
    name: 'get_multiple_weathers',
    description: 'Gets the current weather in the provided list of locations.',
    parameters: {
      type: 'object',
      properties: {
        locations: {
          type: 'array',
          items: { type: 'string' },
          description: 'List of city and state, e.g. ["San Francisco, CA", "New York, NY"]',
        },
        format: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' },
      },
      required: ['locations'],
    },
  },
];

const WEATHER_TOOLS_TEXT =
  '# Tools\n\n## functions\n\nnamespace functions {\n\n' +
  '// Gets the location of the user.\ntype get_location = () => any;\n\n' +
  '// Gets the current weather in the provided location.\ntype get_current_weather = (_: {\n' +
  '// The city and state, e.g. San Francisco, CA\nlocation: string,\n' +
  'format?: "celsius" | "fahrenheit", // default: celsius\n}) => any;\n\n' +
  '// Gets the current weather in the provided list of locations.\ntype get_multiple_weathers = (_: {\n' +
  '// List of city and state, e.g. ["San Francisco, CA", "New York, NY"]\nlocations: string[],\n' +
  'format?: "celsius" | "fahrenheit", // default: celsius\n}) => any;\n\n' +
  '} // namespace functions';

describe('contract', () => {
  const conv: Conversation = {
    system: { reasoningEffort: 'high', currentDate: '2025-06-28', knowledgeCutoff: '2024-06' },
    developer: {
      instructions: 'Use a friendly tone.',
      tools: [{ name: 'get_location', description: 'Gets the location of the user.' }],
    },
    messages: [
      { role: 'user', content: 'What is the weather like in SF?' },
      { role: 'assistant', channel: 'analysis', content: 'Need to use function get_weather.' },
      {
        role: 'assistant',
        channel: 'commentary',
        recipient: 'functions.get_weather',
        contentType: 'json',
        content: '{"location":"San Francisco"}',
      },
      { role: 'tool', name: 'functions.get_weather', content: '{"sunny": true, "temperature": 20}' },
    ],
  };
  const expected =
    SYSTEM_HIGH_FN +
    '<|start|>developer<|message|># Instructions\n\nUse a friendly tone.\n\n# Tools\n\n## functions\n\n' +
    'namespace functions {\n\n// Gets the location of the user.\ntype get_location = () => any;\n\n} // namespace functions<|end|>' +
    '<|start|>user<|message|>What is the weather like in SF?<|end|>' +
    '<|start|>assistant<|channel|>analysis<|message|>Need to use function get_weather.<|end|>' +
    '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}<|call|>' +
    '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"sunny": true, "temperature": 20}<|end|>' +
    '<|start|>assistant';

  test('decoded ids are the Harmony text, ending with <|start|>assistant', () => {
    const ids = renderConversation(conv);
    expect(tokenizer.decode(ids)).toBe(expected);
    expect(renderConversationText(conv)).toBe(expected);
    expect(ids.slice(-2)).toEqual([S.start, ...enc('assistant')]);
    expect(ids.slice(-2)).toEqual([200006, 173781]);
    expect(ids[0]).toBe(200006);
    // specials appear in exactly this order
    expect(ids.filter((id) => tokenizer.isSpecial(id))).toEqual([
      200006, 200008, 200007, // system
      200006, 200008, 200007, // developer
      200006, 200008, 200007, // user
      200006, 200005, 200008, 200007, // analysis
      200006, 200005, 200003, 200008, 200012, // tool call
      200006, 200005, 200008, 200007, // tool result
      200006,
    ]);
  });

  test('text pieces are tokenized separately, as openai/harmony does', () => {
    const ids = renderConversation(conv);
    const call = [
      S.start, ...enc('assistant'), S.channel, ...enc('commentary'), ...enc(' to=functions.get_weather'),
      ...enc(' '), S.constrain, ...enc('json'), S.message, ...enc('{"location":"San Francisco"}'), S.call,
    ];
    const result = [
      S.start, ...enc('functions.get_weather'), ...enc(' to=assistant'), S.channel, ...enc('commentary'),
      S.message, ...enc('{"sunny": true, "temperature": 20}'), S.end,
    ];
    const tail = [...call, ...result, S.start, ...enc('assistant')];
    expect(ids.slice(-tail.length)).toEqual(tail);
    const user = [S.start, ...enc('user'), S.message, ...enc('What is the weather like in SF?'), S.end];
    const idx = ids.indexOf(S.start, ids.indexOf(S.start, 1) + 1);
    expect(ids.slice(idx, idx + user.length)).toEqual(user);
  });
});

describe('system and developer messages', () => {
  test('docs function-calling input example (three tools)', () => {
    const text = renderConversationText({
      system: { reasoningEffort: 'high', currentDate: '2025-06-28' },
      developer: { instructions: 'Use a friendly tone.', tools: WEATHER_TOOLS },
      messages: [{ role: 'user', content: 'What is the weather like in SF?' }],
    });
    expect(text).toBe(
      SYSTEM_HIGH_FN +
        '<|start|>developer<|message|># Instructions\n\nUse a friendly tone.\n\n' +
        WEATHER_TOOLS_TEXT +
        '<|end|><|start|>user<|message|>What is the weather like in SF?<|end|><|start|>assistant',
    );
  });

  test('defaults: medium effort, 2024-06 cutoff, no date, all three channels', () => {
    const conv: Conversation = { messages: [{ role: 'user', content: 'What is 2 + 2?' }] };
    const expected =
      '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
      'Knowledge cutoff: 2024-06\n\nReasoning: medium\n\n' +
      '# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>' +
      '<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant';
    expect(renderConversationText(conv)).toBe(expected);
    expect(tokenizer.decode(renderConversation(conv))).toBe(expected);
  });

  test.each(['low', 'medium', 'high'] as const)('reasoning effort %s with developer instructions', (effort) => {
    const text = renderConversationText({
      system: { reasoningEffort: effort },
      developer: { instructions: "Answer the user's questions like a robot." },
      messages: [{ role: 'user', content: 'What is the capital of the largest country in the world?' }],
    });
    expect(text).toBe(
      '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
        `Knowledge cutoff: 2024-06\n\nReasoning: ${effort}\n\n` +
        '# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>' +
        "<|start|>developer<|message|># Instructions\n\nAnswer the user's questions like a robot.<|end|>" +
        '<|start|>user<|message|>What is the capital of the largest country in the world?<|end|><|start|>assistant',
    );
  });

  test('custom channels, dates, omitted pieces', () => {
    expect(
      renderConversationText({
        system: { knowledgeCutoff: '2021-01', currentDate: '2021-01-01', channels: ['analysis', 'final'] },
        messages: [{ role: 'user', content: 'What is 42 * pi?' }],
      }),
    ).toBe(
      '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
        'Knowledge cutoff: 2021-01\nCurrent date: 2021-01-01\n\nReasoning: medium\n\n' +
        '# Valid channels: analysis, final. Channel must be included for every message.<|end|>' +
        '<|start|>user<|message|>What is 42 * pi?<|end|><|start|>assistant',
    );
    expect(
      renderConversationText({
        system: { modelIdentity: null, knowledgeCutoff: null, reasoningEffort: null, channels: null },
        messages: [],
      }),
    ).toBe('<|start|>system<|message|><|end|><|start|>assistant');
    expect(
      renderConversationText(
        { system: { requiredChannels: false, reasoningEffort: 'low' }, messages: [] },
        { appendStart: false },
      ),
    ).toBe(
      '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
        'Knowledge cutoff: 2024-06\n\nReasoning: low\n\n# Valid channels: analysis, commentary, final.<|end|>',
    );
    expect(renderConversationText({ system: false, messages: [{ role: 'user', content: 'hi' }] }, { nextRole: 'user' })).toBe(
      '<|start|>user<|message|>hi<|end|><|start|>user',
    );
  });

  const BROWSER_TEXT =
    '## browser\n\n' +
    '// Tool for browsing.\n' +
    '// The `cursor` appears in brackets before each browsing display: `[{cursor}]`.\n' +
    '// Cite information from the tool using the following format:\n' +
    '// `【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\n' +
    '// Do not quote more than 10 words directly from the tool output.\n' +
    '// sources=web (default: web)\n' +
    'namespace browser {\n\n' +
    '// Searches for information related to `query` and displays `topn` results.\n' +
    'type search = (_: {\nquery: string,\ntopn?: number, // default: 10\nsource?: string,\n}) => any;\n\n' +
    '// Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, showing `num_lines` lines.\n' +
    '// Valid link ids are displayed with the formatting: `【{id}†.*】`.\n' +
    '// If `cursor` is not provided, the most recent page is implied.\n' +
    '// If `id` is a string, it is treated as a fully qualified URL associated with `source`.\n' +
    '// If `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on the most relevant passage, if available.\n' +
    '// Use this function without `id` to scroll to a new location of an opened page.\n' +
    'type open = (_: {\nid?: number | string, // default: -1\ncursor?: number, // default: -1\nloc?: number, // default: -1\n' +
    'num_lines?: number, // default: -1\nview_source?: boolean, // default: false\nsource?: string,\n}) => any;\n\n' +
    '// Finds exact matches of `pattern` in the current page, or the page given by `cursor`.\n' +
    'type find = (_: {\npattern: string,\ncursor?: number, // default: -1\n}) => any;\n\n' +
    '} // namespace browser';
  const PYTHON_TEXT =
    '## python\n\n' +
    'Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. This tool should be used for internal reasoning, but not for code that is intended to be visible to the user (e.g. when creating plots, tables, or files).\n\n' +
    "When you send a message containing Python code to python, it will be executed in a stateful Jupyter notebook environment. python will respond with the output of the execution or time out after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. Internet access for this session is UNKNOWN. Depends on the cluster.";
  const SYS_HEAD =
    '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
    'Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: medium\n\n';
  const CHANNELS = '# Valid channels: analysis, commentary, final. Channel must be included for every message.';

  test('built-in browser and python tools in the system message', () => {
    expect(renderConversationText({ system: { currentDate: '2025-06-28', browser: true, python: true }, messages: [] })).toBe(
      `${SYS_HEAD}# Tools\n\n${BROWSER_TEXT}\n\n${PYTHON_TEXT}\n\n${CHANNELS}<|end|><|start|>assistant`,
    );
    expect(renderConversationText({ system: { currentDate: '2025-06-28', browser: true }, messages: [] })).toBe(
      `${SYS_HEAD}# Tools\n\n${BROWSER_TEXT}\n\n${CHANNELS}<|end|><|start|>assistant`,
    );
  });

  test('browser tool plus developer function tools', () => {
    const lookup: ToolDefinition = {
      name: 'lookup_weather',
      description:
        "Use this tool to lookup the weather in a given location. Call it with the parameter 'location', can be any textual description of a location.",
      parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    };
    expect(
      renderConversationText({
        system: { currentDate: '2025-06-28', browser: true },
        developer: { tools: [lookup] },
        messages: [],
      }),
    ).toBe(
      `${SYS_HEAD}# Tools\n\n${BROWSER_TEXT}\n\n${CHANNELS}\nCalls to these tools must go to the commentary channel: 'functions'.<|end|>` +
        '<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n' +
        `// ${lookup.description}\ntype lookup_weather = (_: {\nlocation: string,\n}) => any;\n\n} // namespace functions<|end|><|start|>assistant`,
    );
  });

  test('no developer message when it has nothing to render', () => {
    expect(renderConversationText({ system: false, developer: {}, messages: [] })).toBe('<|start|>assistant');
    expect(renderConversationText({ system: false, developer: { tools: [] }, messages: [] })).toBe('<|start|>assistant');
  });
});

describe('JSON Schema to TypeScript (openai/harmony rules)', () => {
  test('kitchensink: title, examples, nullable, enum, oneOf with defaults, object description', () => {
    const params = {
      description: 'params object',
      type: 'object',
      properties: {
        string: { type: 'string', title: 'STRING', description: 'A string', examples: ['hello', 'world'] },
        string_nullable: { type: 'string', nullable: true, description: 'A nullable string', default: 'the default' },
        string_enum: { type: 'string', enum: ['a', 'b', 'c'] },
        oneof_string_or_number: {
          oneOf: [
            { type: 'string', default: 'default_string_in_oneof' },
            { type: 'number', description: 'numbers can happen too' },
          ],
          description: 'a oneof',
          default: 20,
        },
      },
    };
    const text = renderConversationText({
      system: false,
      developer: { tools: [{ name: 'kitchensink', description: 'A function with various complex schemas.', parameters: params }] },
      messages: [],
    });
    expect(text).toBe(
      '<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n' +
        '// A function with various complex schemas.\n' +
        'type kitchensink = (_: // params object\n{\n' +
        '// STRING\n//\n// A string\n// Examples:\n// - "hello"\n// - "world"\nstring?: string,\n' +
        '// A nullable string\nstring_nullable?: string | null, // default: "the default"\n' +
        'string_enum?: "a" | "b" | "c",\n' +
        '// a oneof\n// default: 20\noneof_string_or_number?:\n' +
        ' | string // default: "default_string_in_oneof"\n' +
        ' | number // numbers can happen too\n' +
        ',\n}) => any;\n\n} // namespace functions<|end|><|start|>assistant',
    );
  });

  test('scalars, arrays, type unions, nested objects', () => {
    expect(jsonSchemaToTypeScript({ type: 'integer' })).toBe('number');
    expect(jsonSchemaToTypeScript({ type: 'boolean' })).toBe('boolean');
    expect(jsonSchemaToTypeScript({ type: 'array' })).toBe('Array<any>');
    expect(jsonSchemaToTypeScript({ type: 'array', items: { type: 'integer' } })).toBe('number[]');
    expect(jsonSchemaToTypeScript({ type: ['integer', 'string', 'null'] })).toBe('number | string | null');
    expect(jsonSchemaToTypeScript({ type: 'string', enum: ['x', 'y'] })).toBe('"x" | "y"');
    expect(jsonSchemaToTypeScript({})).toBe('any');
    expect(jsonSchemaToTypeScript({ type: 'null' })).toBe('any');
    expect(
      jsonSchemaToTypeScript({
        type: 'object',
        properties: {
          a: { type: 'object', properties: { b: { type: 'string' } }, required: ['b'] },
          list: { type: 'array', items: { type: 'object', properties: { n: { type: 'number', default: 1.5 } } } },
          flag: { type: 'boolean', default: true },
          unit: { type: 'string', enum: ['c', 'f'], default: 'c', description: 'Unit' },
        },
        required: ['a'],
      }),
    ).toBe(
      '{\na: {\n    b: string,\n    },\nlist?: {\n    n?: number, // default: 1.5\n    }[],\n' +
        'flag?: boolean, // default: true\n// Unit\nunit?: "c" | "f", // default: c\n}',
    );
  });

  test('tool description lines and namespace descriptions', () => {
    expect(
      renderConversationText({
        system: false,
        developer: {
          tools: [{ name: 'noop', description: 'Line one.\nLine two.' }, { name: 'bare' }],
          namespaces: [{ name: 'alpha', description: 'Alpha tools.\nSecond line.', tools: [{ name: 'go', description: 'Go.' }] }],
        },
        messages: [],
      }),
    ).toBe(
      '<|start|>developer<|message|># Tools\n\n' +
        '## alpha\n\n// Alpha tools.\n// Second line.\nnamespace alpha {\n\n// Go.\ntype go = () => any;\n\n} // namespace alpha\n\n' +
        '## functions\n\nnamespace functions {\n\n// Line one.\n// Line two.\ntype noop = () => any;\n\ntype bare = () => any;\n\n} // namespace functions' +
        '<|end|><|start|>assistant',
    );
  });
});

describe('messages and analysis dropping', () => {
  const cot: Conversation = {
    system: false,
    messages: [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', channel: 'analysis', content: 'User asks a simple question: "What is 2 + 2?" The answer: 4.' },
      { role: 'assistant', channel: 'final', content: '2 + 2 equals 4.' },
      { role: 'user', content: 'What about 9 / 2?' },
    ],
  };

  test('earlier analysis is dropped once a final answer follows', () => {
    expect(renderConversationText(cot)).toBe(
      '<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>' +
        '<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant',
    );
  });

  test("dropAnalysis: 'none' keeps it", () => {
    expect(renderConversationText(cot, { dropAnalysis: 'none' })).toBe(
      '<|start|>user<|message|>What is 2 + 2?<|end|>' +
        '<|start|>assistant<|channel|>analysis<|message|>User asks a simple question: "What is 2 + 2?" The answer: 4.<|end|>' +
        '<|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>' +
        '<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant',
    );
  });

  test('analysis is kept while the turn is in a tool-call loop (harmony layout, recipient in role)', () => {
    const conv: Conversation = {
      system: false,
      messages: [
        { role: 'user', content: 'What is the weather in SF?' },
        { role: 'assistant', channel: 'analysis', content: 'User asks: “What is the weather in SF?” We need to use lookup_weather tool.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.lookup_weather', contentType: '<|constrain|>json', content: '{"location": "San Francisco"}' },
        { role: 'tool', name: 'functions.lookup_weather', channel: null, recipient: null, content: '{"temperature": 20, "description": "sunny"}' },
      ],
    };
    const expected =
      '<|start|>user<|message|>What is the weather in SF?<|end|>' +
      '<|start|>assistant<|channel|>analysis<|message|>User asks: “What is the weather in SF?” We need to use lookup_weather tool.<|end|>' +
      '<|start|>assistant to=functions.lookup_weather<|channel|>commentary <|constrain|>json<|message|>{"location": "San Francisco"}<|call|>' +
      '<|start|>functions.lookup_weather<|message|>{"temperature": 20, "description": "sunny"}<|end|><|start|>assistant';
    const ids = renderConversation(conv, { recipientPlacement: 'role' });
    expect(tokenizer.decode(ids)).toBe(expected);
    expect(renderConversationText(conv, { recipientPlacement: 'role' })).toBe(expected);
    const header = [S.start, ...enc('assistant'), ...enc(' to=functions.lookup_weather'), S.channel, ...enc('commentary'), ...enc(' '), S.constrain, ...enc('json'), S.message];
    const at = ids.indexOf(S.constrain);
    expect(ids.slice(at - header.indexOf(S.constrain), at - header.indexOf(S.constrain) + header.length)).toEqual(header);
    // also kept in the default (docs) layout
    expect(renderConversationText(conv)).toContain('<|channel|>analysis<|message|>User asks');
  });

  const twoTurns: Conversation = {
    system: false,
    messages: [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', channel: 'analysis', content: 'thinking 2+2' },
      { role: 'assistant', channel: 'final', content: '4' },
      { role: 'user', content: 'What is 3 + 5?' },
      { role: 'assistant', channel: 'analysis', content: 'thinking 3+5' },
      { role: 'assistant', channel: 'final', content: '8' },
    ],
  };

  test("harmony rule: only analysis before the first final is dropped (keeps analysis between finals)", () => {
    expect(renderConversationText(twoTurns, { appendStart: false })).toBe(
      '<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant<|channel|>final<|message|>4<|end|>' +
        '<|start|>user<|message|>What is 3 + 5?<|end|><|start|>assistant<|channel|>analysis<|message|>thinking 3+5<|end|>' +
        '<|start|>assistant<|channel|>final<|message|>8<|end|>',
    );
  });

  test("'completed-turns' drops every analysis followed by a final", () => {
    expect(renderConversationText(twoTurns, { appendStart: false, dropAnalysis: 'completed-turns' })).toBe(
      '<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant<|channel|>final<|message|>4<|end|>' +
        '<|start|>user<|message|>What is 3 + 5?<|end|><|start|>assistant<|channel|>final<|message|>8<|end|>',
    );
  });

  test('final answer in history ends with <|end|>; training mode ends with <|return|>', () => {
    const conv: Conversation = {
      system: false,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', channel: 'final', content: 'Hello!' },
      ],
    };
    expect(renderConversationText(conv, { appendStart: false })).toBe(
      '<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello!<|end|>',
    );
    const ids = renderConversation(conv, { training: true });
    expect(ids[ids.length - 1]).toBe(200002);
    expect(tokenizer.decode(ids)).toBe('<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello!<|return|>');
  });

  test('tool results default to the channel of their call; other content types; author names', () => {
    const text = renderConversationText(
      {
        system: false,
        messages: [
          { role: 'assistant', channel: 'analysis', recipient: 'browser.search', contentType: 'code', content: '{"query":"x"}' },
          { role: 'tool', name: 'browser.search', content: 'results' },
          { role: 'assistant', recipient: 'python', content: 'print(1)' },
          { role: 'tool', name: 'python', content: '1' },
          { role: 'user', name: 'alice', content: 'hey' },
          { role: 'assistant', channel: 'final', recipient: 'all', content: 'ok' },
        ],
      },
      // (with the default harmony rule the analysis-channel browser call would be dropped: a final follows)
      { appendStart: false, dropAnalysis: 'none' },
    );
    expect(text).toBe(
      '<|start|>assistant<|channel|>analysis to=browser.search code<|message|>{"query":"x"}<|call|>' +
        '<|start|>browser.search to=assistant<|channel|>analysis<|message|>results<|end|>' +
        '<|start|>assistant to=python<|message|>print(1)<|call|>' +
        '<|start|>python to=assistant<|message|>1<|end|>' +
        '<|start|>user:alice<|message|>hey<|end|>' +
        '<|start|>assistant<|channel|>final<|message|>ok<|end|>',
    );
  });

  test('special-token text inside content is rendered as ordinary text', () => {
    const ids = renderMessageTokens({ role: 'user', content: 'say <|end|> please' });
    expect(ids.filter((id) => tokenizer.isSpecial(id))).toEqual([S.start, S.message, S.end]);
    expect(tokenizer.decode(ids)).toBe('<|start|>user<|message|>say <|end|> please<|end|>');
  });

  test('tool messages need a name', () => {
    expect(() => renderConversation({ system: false, messages: [{ role: 'tool', content: 'x' }] })).toThrow(/name/);
  });
});
