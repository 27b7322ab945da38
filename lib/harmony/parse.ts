/**
 * Streaming Harmony parser: token ids in, typed events out. Never throws on
 * any token sequence; malformed input produces `error` events and the parser
 * resynchronises at the next `<|start|>`.
 */
import { tokenizer, SPECIAL_TOKENS, type StreamDecoder } from '../tokenizer.js';
import type { HarmonyEvent, HarmonyParserOptions, MessageHeader, ParsedMessage, Role, StopKind } from './types.js';

const T = SPECIAL_TOKENS;
const ROLES: ReadonlySet<string> = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const CHANNEL_TEXT = '<|channel|>';
const CONSTRAIN_TEXT = '<|constrain|>';

type State = 'expect-start' | 'header' | 'content';

interface HeaderParse {
  header?: MessageHeader;
  /** Words that were not header metadata. */
  leftover: string[];
  problems: string[];
}

// The header's real <|channel|> and <|constrain|> tokens, as the streaming parser writes them into
// the header text: lone surrogates, which decoded text never holds (a TextDecoder turns them into
// U+FFFD), so `<|channel|>` spelled with ordinary tokens stays text. openai/harmony
// (parse_header_from_tokens) decodes the header and searches for the marker text, so there the
// spelled-out marker counts as the real one; ids decide here.
const CHANNEL_TOKEN = '\ud800';
const CONSTRAIN_TOKEN = '\udbff';

/** Decoded header tokens with the real marker tokens as CHANNEL_TOKEN / CONSTRAIN_TOKEN. */
function headerText(tokens: readonly number[]): string {
  let out = '';
  let run: number[] = [];
  for (const t of tokens) {
    if (t !== T.channel && t !== T.constrain) {
      run.push(t);
      continue;
    }
    out += tokenizer.decode(run) + (t === T.channel ? CHANNEL_TOKEN : CONSTRAIN_TOKEN);
    run = [];
  }
  return out + tokenizer.decode(run);
}

/** Parses a decoded header string, e.g. `assistant to=functions.f<|channel|>commentary <|constrain|>json`. */
export function parseHeaderText(text: string, knownRole?: Role): HeaderParse {
  return parseHeader(text, knownRole, CHANNEL_TEXT, CONSTRAIN_TEXT);
}

function parseHeader(text: string, knownRole: Role | undefined, CHANNEL_TEXT: string, CONSTRAIN_TEXT: string): HeaderParse {
  const shown = (w: string): string => w.split(CHANNEL_TEXT).join('<|channel|>').split(CONSTRAIN_TEXT).join('<|constrain|>');
  const problems: string[] = [];
  let s = text;
  let channel: string | undefined;
  for (let idx = s.indexOf(CHANNEL_TEXT); idx >= 0; idx = s.indexOf(CHANNEL_TEXT)) {
    const after = s.slice(idx + CHANNEL_TEXT.length);
    const value = /^[^\s<\ud800\udbff]*/.exec(after)![0]; // up to a space or the next marker
    if (value === '') problems.push('channel marker without a channel name');
    else if (channel === undefined) channel = value;
    else problems.push(`second channel "${shown(value)}" ignored`);
    s = `${s.slice(0, idx)} ${after.slice(value.length)}`;
  }
  s = s.split(CONSTRAIN_TEXT).join(` ${CONSTRAIN_TEXT}`).trim();
  const parts = s.split(/\s+/).filter((p) => p !== '');

  let role: Role;
  let name: string | undefined;
  if (knownRole !== undefined) {
    role = knownRole;
    if (parts[0] === knownRole) parts.shift();
  } else {
    const first = parts.shift();
    if (first === undefined) return { leftover: [], problems: [...problems, 'message header has no role'] };
    const colon = first.indexOf(':');
    if (ROLES.has(first)) role = first as Role;
    else if (colon > 0 && ROLES.has(first.slice(0, colon)) && first.slice(0, colon) !== 'tool') {
      role = first.slice(0, colon) as Role;
      name = first.slice(colon + 1);
    } else {
      role = 'tool';
      name = first;
    }
  }

  let recipient: string | undefined;
  let contentType: string | undefined;
  let constrained = false;
  let pendingConstrain = false;
  const leftover: string[] = [];
  for (const p of parts) {
    if (p.startsWith('to=')) {
      if (recipient === undefined) recipient = p.slice(3);
      else leftover.push(p);
    } else if (p.startsWith(CONSTRAIN_TEXT)) {
      const rest = p.slice(CONSTRAIN_TEXT.length);
      constrained = true;
      if (rest === '') pendingConstrain = true;
      else if (contentType === undefined) contentType = rest;
      else leftover.push(p);
    } else if (contentType === undefined) {
      contentType = p;
      pendingConstrain = false;
    } else {
      leftover.push(p);
    }
  }
  if (pendingConstrain && contentType === undefined) problems.push('constrain marker without a content type');
  for (let i = 0; i < leftover.length; i++) leftover[i] = shown(leftover[i]!);
  if (leftover.length) problems.push(`unexpected text in message header: ${JSON.stringify(leftover.join(' '))}`);

  const header: MessageHeader = { role };
  if (name !== undefined) header.name = name;
  if (channel !== undefined) header.channel = channel;
  if (recipient !== undefined && recipient !== '') header.recipient = recipient;
  if (contentType !== undefined) header.contentType = contentType;
  if (constrained && contentType !== undefined) header.constrained = true;
  return { header, leftover, problems };
}

function headerFields(h: MessageHeader): MessageHeader {
  const out: MessageHeader = { role: h.role };
  if (h.name !== undefined) out.name = h.name;
  if (h.channel !== undefined) out.channel = h.channel;
  if (h.recipient !== undefined) out.recipient = h.recipient;
  if (h.contentType !== undefined) out.contentType = h.contentType;
  if (h.constrained) out.constrained = true;
  return out;
}

function stopOf(token: number): StopKind | undefined {
  if (token === T.end) return 'end';
  if (token === T.return) return 'return';
  if (token === T.call) return 'call';
  return undefined;
}

function describe(token: number): string {
  return tokenizer.specialName(token) ?? `token ${token}`;
}

export class HarmonyStreamParser {
  /** Messages completed so far (including ones cut by end of stream). */
  readonly messages: ParsedMessage[] = [];
  private readonly opts: Required<Pick<HarmonyParserOptions, 'maxHeaderTokens'>> & HarmonyParserOptions;
  private state: State = 'expect-start';
  private desynced = false;
  private headerTokens: number[] = [];
  private headerRole: Role | undefined;
  private header: MessageHeader | undefined;
  private content = '';
  private readonly decoder: StreamDecoder = tokenizer.createStreamDecoder();

  constructor(options: HarmonyParserOptions = {}) {
    this.opts = { maxHeaderTokens: 256, ...options };
    this.reset();
  }

  /** Back to the initial state (`messages` is kept). */
  reset(): void {
    this.desynced = false;
    this.headerTokens = [];
    this.header = undefined;
    this.content = '';
    this.decoder.reset();
    if (this.opts.startInHeader) {
      this.state = 'header';
      this.headerRole = this.opts.role ?? 'assistant';
    } else {
      this.state = 'expect-start';
      this.headerRole = undefined;
    }
  }

  /** Feeds many tokens. */
  pushAll(tokens: Iterable<number>): HarmonyEvent[] {
    const out: HarmonyEvent[] = [];
    for (const t of tokens) for (const e of this.push(t)) out.push(e);
    return out;
  }

  push(token: number): HarmonyEvent[] {
    const ev: HarmonyEvent[] = [];
    try {
      this.step(token, ev);
    } catch (e) {
      // Defensive: nothing above should throw; never let it escape.
      ev.push({ type: 'error', message: `internal parser error: ${(e as Error)?.message ?? String(e)}`, token });
      this.toExpectStart(true);
    }
    return ev;
  }

  /** Signals end of generation: closes an open message (stop 'eos') and resets the parser. */
  end(options: { cut?: boolean } = {}): HarmonyEvent[] {
    const ev: HarmonyEvent[] = [];
    try {
      if (this.state === 'content') {
        this.finishMessage('eos', ev);
      } else if (this.state === 'header' && !options.cut && (this.headerTokens.length > 0 || this.headerRole === undefined)) {
        // (cut: the caller stopped the stream, e.g. at maxTokens, so a header cut short is no error)
        ev.push({ type: 'error', message: 'stream ended inside a message header', token: null });
      }
    } catch (e) {
      ev.push({ type: 'error', message: `internal parser error: ${(e as Error)?.message ?? String(e)}`, token: null });
    }
    this.reset();
    return ev;
  }

  private toExpectStart(desynced: boolean): void {
    this.between('expect-start', desynced);
  }

  private toHeader(): void {
    this.between('header', false);
  }

  /** Between two messages: nothing of the last one's header, content or partial UTF-8 is kept. */
  private between(state: State, desynced: boolean): void {
    this.state = state;
    this.desynced = desynced;
    this.headerTokens = [];
    this.headerRole = undefined;
    this.header = undefined;
    this.content = '';
    this.decoder.reset();
  }

  private step(token: number, ev: HarmonyEvent[]): void {
    if (typeof token !== 'number' || !tokenizer.isValidId(token)) {
      ev.push({ type: 'error', message: `invalid token id ${String(token)}`, token: typeof token === 'number' ? token : NaN });
      return;
    }
    switch (this.state) {
      case 'expect-start':
        if (token === T.start) this.toHeader();
        else if (!this.desynced) {
          ev.push({ type: 'error', message: `unexpected ${describe(token)} while expecting <|start|>`, token });
          this.desynced = true;
        }
        return;
      case 'header':
        return this.stepHeader(token, ev);
      case 'content':
        return this.stepContent(token, ev);
    }
  }

  private stepHeader(token: number, ev: HarmonyEvent[]): void {
    if (token === T.message) {
      const parsed = parseHeader(headerText(this.headerTokens), this.headerRole, CHANNEL_TOKEN, CONSTRAIN_TOKEN);
      for (const p of parsed.problems) ev.push({ type: 'error', message: p, token });
      if (!parsed.header) {
        this.toExpectStart(true);
        return;
      }
      this.beginContent(parsed.header, ev);
      return;
    }
    if (token === T.start) {
      if (this.headerTokens.length > 0) {
        ev.push({ type: 'error', message: '<|start|> inside an unfinished message header; header dropped', token });
      }
      this.toHeader();
      return;
    }
    const stop = stopOf(token);
    if (stop !== undefined) {
      // Header never reached <|message|> (seen from real models): recover what we can.
      ev.push({ type: 'error', message: `${describe(token)} before <|message|> in message header`, token });
      if (this.headerTokens.length > 0) {
        const parsed = parseHeader(headerText(this.headerTokens), this.headerRole, CHANNEL_TOKEN, CONSTRAIN_TOKEN);
        if (parsed.header) {
          const h = { ...parsed.header };
          let text = parsed.leftover.join(' ');
          if (h.recipient === undefined && h.contentType !== undefined) {
            // a bare word here is content, not a content type
            text = text ? `${h.contentType} ${text}` : h.contentType;
            delete h.contentType;
            delete h.constrained;
          }
          this.beginContent(h, ev);
          if (text) {
            this.content = text;
            ev.push(this.textEvent(text));
          }
          this.finishMessage(stop, ev, false);
          return;
        }
      }
      this.toExpectStart(false);
      return;
    }
    if (tokenizer.isSpecial(token) && token !== T.channel && token !== T.constrain) {
      ev.push({ type: 'error', message: `unexpected ${describe(token)} in message header`, token });
      this.toExpectStart(true);
      return;
    }
    this.headerTokens.push(token);
    if (this.headerTokens.length > this.opts.maxHeaderTokens) {
      ev.push({ type: 'error', message: `message header longer than ${this.opts.maxHeaderTokens} tokens`, token });
      this.toExpectStart(true);
    }
  }

  private beginContent(header: MessageHeader, ev: HarmonyEvent[]): void {
    this.header = header;
    this.headerTokens = [];
    this.content = '';
    this.decoder.reset();
    this.state = 'content';
    ev.push({ type: 'message-start', ...headerFields(header) });
  }

  private textEvent(delta: string): HarmonyEvent {
    const h = this.header!;
    const e: HarmonyEvent = { type: 'text', role: h.role, delta };
    if (h.channel !== undefined) e.channel = h.channel;
    if (h.recipient !== undefined) e.recipient = h.recipient;
    return e;
  }

  private stepContent(token: number, ev: HarmonyEvent[]): void {
    const stop = stopOf(token);
    if (stop !== undefined) {
      this.finishMessage(stop, ev);
      return;
    }
    if (token === T.start) {
      ev.push({ type: 'error', message: 'message interrupted by <|start|> before <|end|>', token });
      this.finishMessage('interrupted', ev, false);
      this.toHeader();
      return;
    }
    if (tokenizer.isSpecial(token)) {
      ev.push({ type: 'error', message: `unexpected ${describe(token)} in message content; ignored`, token });
      return;
    }
    const delta = this.decoder.push(token);
    if (delta) {
      this.content += delta;
      ev.push(this.textEvent(delta));
    }
  }

  private finishMessage(stop: ParsedMessage['stop'], ev: HarmonyEvent[], allowToolCall = true): void {
    const h = this.header!;
    const rest = this.decoder.flush();
    if (rest) {
      this.content += rest;
      ev.push(this.textEvent(rest));
    }
    const content = this.content;
    if (
      allowToolCall &&
      stop !== 'eos' &&
      stop !== 'interrupted' &&
      h.role === 'assistant' &&
      h.recipient !== undefined &&
      h.recipient !== 'all'
    ) {
      ev.push(toolCallEvent(h, content));
    }
    ev.push({ type: 'message-end', ...headerFields(h), content, stop });
    this.messages.push({ ...headerFields(h), content, stop });
    if (stop === 'return') ev.push({ type: 'return' });
    this.toExpectStart(false);
  }
}

function toolCallEvent(h: MessageHeader, raw: string): HarmonyEvent {
  const recipient = h.recipient!;
  const name = recipient.startsWith('functions.') ? recipient.slice('functions.'.length) : recipient;
  const expectJson = (h.contentType ?? '').toLowerCase().includes('json') || recipient.startsWith('functions.');
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch (e) {
    if (expectJson) {
      const err: HarmonyEvent = { type: 'tool-call-error', recipient, name, raw, error: (e as Error).message };
      if (h.channel !== undefined) err.channel = h.channel;
      return err;
    }
    args = raw;
  }
  const call: HarmonyEvent = { type: 'tool-call', recipient, name, arguments: args, raw };
  if (h.channel !== undefined) call.channel = h.channel;
  if (h.contentType !== undefined) call.contentType = h.contentType;
  return call;
}

export function createHarmonyParser(options?: HarmonyParserOptions): HarmonyStreamParser {
  return new HarmonyStreamParser(options);
}

/**
 * Parses complete token sequences into messages. With `startInHeader` the tokens are a completion
 * that follows a rendered `<|start|>assistant`.
 */
export function parseMessages(tokens: Iterable<number>, options?: HarmonyParserOptions): ParsedMessage[] {
  const p = new HarmonyStreamParser(options);
  p.pushAll(tokens);
  p.end();
  return p.messages;
}
