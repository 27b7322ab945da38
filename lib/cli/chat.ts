// gpt-oss chat <model>: an interactive conversation over one KV cache (ChatSession).
import type { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { ChatSession } from '../chat.js';
import { addSamplingOptions, generateOptions, loadWithProgress, parseIntArg, type SamplingFlags } from './common.js';
import { createHarmonyPrinter } from './generate.js';

interface ChatFlags extends SamplingFlags {
  instructions?: string;
  maxContext?: number;
}

const HELP = 'commands: /exit (or Ctrl-D) quits, /reset forgets the conversation, /help shows this';

export function registerChat(program: Command): void {
  const cmd = program
    .command('chat')
    .description('chat with the model interactively (/exit to quit)')
    .argument('<model>', 'checkpoint folder (config.json + *.safetensors), or hf:org/name[@revision] (downloaded into the hub cache)')
    .option('--instructions <text>', 'developer instructions (the "system prompt")')
    .option('--max-context <n>', 'KV-cache size in tokens; when full, the oldest turns are dropped (default min(4096, max_position_embeddings))', parseIntArg(16));
  addSamplingOptions(cmd).action(async (dir: string, flags: ChatFlags) => {
    const model = await loadWithProgress(dir, flags);
    const options = { ...generateOptions(flags), ...(flags.effort !== undefined ? { reasoningEffort: flags.effort } : {}) };
    const newChat = (): ChatSession =>
      new ChatSession(model, {
        ...(flags.instructions !== undefined ? { developer: { instructions: flags.instructions } } : {}),
        ...(flags.maxContext !== undefined ? { maxContext: flags.maxContext } : {}),
        defaults: options,
        onContextTrim: (dropped) => process.stderr.write(`[context full: the oldest ${dropped.length} message(s) were dropped]\n`),
      });
    let chat = newChat();
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
    let turn: AbortController | null = null;
    // Ctrl-C during a reply stops the reply; at the prompt it quits.
    rl.on('SIGINT', () => {
      if (turn) turn.abort();
      else rl.close();
    });
    if (process.stdin.isTTY) process.stderr.write(`${HELP}\n`);
    // Lines are read through the interface's async iterator, which queues those that arrive while a
    // reply is being generated (rl.question() saw only the line after it was called, so piped turns
    // sent together were dropped).
    const lines = rl[Symbol.asyncIterator]();
    rl.setPrompt('> ');
    try {
      for (;;) {
        if (process.stdin.isTTY) rl.prompt();
        const next = await lines.next();
        if (next.done) break; // closed (Ctrl-D / end of input)
        const text = (next.value as string).trim();
        if (text === '') continue;
        if (text === '/exit' || text === '/quit') break;
        if (text === '/help') {
          process.stderr.write(`${HELP}\n`);
          continue;
        }
        if (text === '/reset') {
          await chat.dispose();
          chat = newChat();
          continue;
        }
        turn = new AbortController();
        const stream = chat.stream(text, { signal: turn.signal });
        const printer = createHarmonyPrinter(Boolean(flags.reasoning));
        for await (const e of stream) printer.print(e);
        const result = await stream.result;
        turn = null;
        printer.finish(result);
        if (result.finishReason === 'error') process.stderr.write(`gpt-oss: ${result.error?.message ?? 'generation failed'}\n`);
        else if (result.finishReason === 'abort') process.stderr.write('[stopped]\n');
        else if (result.finishReason === 'context') process.stderr.write('[context full: the reply was cut; the next message drops the oldest turns]\n');
        else if (result.finishReason === 'tool-call') process.stderr.write('[the model called a tool; tools are not available in this chat]\n');
      }
    } finally {
      rl.close();
      await chat.dispose();
      await model.dispose();
    }
  });
}
