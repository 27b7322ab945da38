// gpt-oss generate <model> --prompt "...": one reply, streamed.
import type { Command } from 'commander';
import { generate, type GenerationEvent, type GenerationResult } from '../generate.js';
import type { Conversation } from '../harmony/index.js';
import { tokenizer } from '../tokenizer.js';
import { addSamplingOptions, generateOptions, parseIntArg, loadWithProgress, UsageError, type SamplingFlags } from './common.js';

interface GenerateFlags extends SamplingFlags {
  prompt?: string;
  instructions?: string;
  json?: boolean;
  raw?: boolean;
  maxContext?: number;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The result as JSON: the error as its message. */
export function resultJson(r: GenerationResult): Record<string, unknown> {
  const { error, ...rest } = r;
  return { type: 'result', ...rest, seed: typeof r.seed === 'bigint' ? String(r.seed) : r.seed, ...(error ? { error: error.message } : {}) };
}

/**
 * Writes the user-visible part of a Harmony event stream: the final channel to stdout; with
 * `reasoning`, the analysis and commentary channels and tool calls to stderr.
 */
export function createHarmonyPrinter(reasoning: boolean): {
  print(e: GenerationEvent): void;
  /** Ends stdout's line; output that never formed a Harmony message is printed as plain text. */
  finish(result: GenerationResult): void;
} {
  let outAtLineStart = true;
  let errChannel: string | undefined;
  return {
    print(e) {
      if (e.type === 'text' && e.role === 'assistant' && e.recipient === undefined) {
        if (e.channel === 'final' || e.channel === undefined) {
          process.stdout.write(e.delta);
          outAtLineStart = e.delta.endsWith('\n');
        } else if (reasoning) {
          if (errChannel !== e.channel) process.stderr.write(`\n[${e.channel}] `);
          errChannel = e.channel;
          process.stderr.write(e.delta);
        }
      } else if (e.type === 'message-end' && errChannel !== undefined) {
        process.stderr.write('\n');
        errChannel = undefined;
      } else if (e.type === 'tool-call' && reasoning) {
        process.stderr.write(`[tool call ${e.recipient} ${e.raw}]\n`);
      }
    },
    finish(result) {
      if (result.messages.length === 0 && result.tokens.length > 0) {
        // e.g. a model that does not speak Harmony (or a random one): show what it said
        const plain = tokenizer.decode(result.tokens.filter((t) => t !== result.stopToken && !tokenizer.isSpecial(t)));
        process.stdout.write(plain);
        outAtLineStart = plain === '' || plain.endsWith('\n');
      }
      if (!outAtLineStart) process.stdout.write('\n');
      outAtLineStart = true;
    },
  };
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate one reply to a prompt (Harmony chat format unless --raw), streamed to stdout')
    .argument('<model>', 'checkpoint folder (config.json + *.safetensors), or hf:org/name[@revision] (downloaded into the hub cache)')
    .option('-p, --prompt <text>', 'the user message (default: read stdin)')
    .option('--instructions <text>', 'developer instructions (the "system prompt")')
    .option('--json', 'print one JSON event per line, then the result')
    .option('--raw', 'complete the prompt as plain text: no chat format')
    .option('--max-context <n>', "KV-cache size in tokens (default prompt + max tokens); a reply that fills it ends with finish reason 'context'", parseIntArg(1));
  addSamplingOptions(cmd).action(async (dir: string, flags: GenerateFlags) => {
    let prompt = flags.prompt;
    if (prompt === undefined) {
      if (process.stdin.isTTY) throw new UsageError('generate: give --prompt "..." (or pipe the prompt on stdin)');
      prompt = await readStdin();
    }
    if (flags.raw && (flags.effort !== undefined || flags.instructions !== undefined))
      throw new UsageError('generate: --effort and --instructions need the chat format (drop --raw)');
    const model = await loadWithProgress(dir, flags);
    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      const conversation: Conversation = {
        ...(flags.effort !== undefined ? { system: { reasoningEffort: flags.effort } } : {}),
        ...(flags.instructions !== undefined ? { developer: { instructions: flags.instructions } } : {}),
        messages: [{ role: 'user', content: prompt }],
      };
      const stream = generate(model, flags.raw ? prompt : conversation, { ...generateOptions(flags), ...(flags.maxContext !== undefined ? { maxContext: flags.maxContext } : {}), signal: controller.signal });
      const printer = createHarmonyPrinter(Boolean(flags.reasoning));
      for await (const e of stream) {
        if (flags.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if (flags.raw) {
          if (e.type === 'token') process.stdout.write(e.text);
        } else printer.print(e);
      }
      const result = await stream.result;
      if (flags.json) process.stdout.write(`${JSON.stringify(resultJson(result))}\n`);
      else {
        if (flags.raw) process.stdout.write('\n');
        else printer.finish(result);
        if (flags.reasoning) {
          const t = result.timings;
          process.stderr.write(
            `[${result.finishReason}: ${result.usage.promptTokens} prompt + ${result.usage.completionTokens} generated tokens, ` +
              `prefill ${t.prefillMs.toFixed(0)} ms, ${t.tokensPerSecond.toFixed(1)} tokens/s, seed ${String(result.seed)}]\n`,
          );
        }
      }
      if (result.finishReason === 'error') throw result.error ?? new Error('generation failed');
      if (result.finishReason === 'abort') process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSigint);
      await model.dispose();
    }
  });
}
