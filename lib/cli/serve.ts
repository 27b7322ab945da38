// gpt-oss serve <model>: the OpenAI-compatible HTTP server (lib/server) on a continuous-batching engine.
import { InvalidArgumentError, type Command } from 'commander';
import { basename, resolve } from 'node:path';
import { ACTIVATIONS_HELP, KV_CACHE_HELP, loadWithProgress, parseActivations, parseDevice, parseIntArg, parseKvCache } from './common.js';
import { createServer } from '../server/app.js';
import type { DeviceRequest, KvCacheDtype } from '../model.js';
import type { ExpertActivations } from '../ops.js';

interface ServeFlags {
  host: string;
  port: number;
  device: DeviceRequest;
  modelName?: string;
  maxSequences: number;
  maxBatchTokens: number;
  maxPrefillTokens?: number;
  maxContext?: number;
  kvBlocks?: number;
  maxQueue: number;
  shutdownTimeout: number;
  engine?: 'native' | 'session';
  pipelineDecode?: boolean;
  kvCache?: KvCacheDtype;
  activations?: ExpertActivations;
  apiKey?: string;
  storedResponses: number;
  cors?: string[];
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/responses, /v1/completions, /v1/models, /health, /metrics)')
    .argument('<model>', 'checkpoint folder (config.json + *.safetensors)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', parseIntArg(0), 8000)
    .option('--device <device>', 'auto, cpu, cuda or cuda:N', parseDevice, 'auto' as DeviceRequest)
    .option('--kv-cache <dtype>', KV_CACHE_HELP, parseKvCache)
    .option('--activations <mode>', ACTIVATIONS_HELP, parseActivations)
    .option('--model-name <id>', "the id clients send as 'model' (default: the folder's name)")
    .option('--max-sequences <n>', 'sequences decoding at once', parseIntArg(1), 8)
    .option('--max-batch-tokens <n>', 'tokens in one step (decode tokens + prefill chunks)', parseIntArg(1), 512)
    .option(
      '--max-prefill-tokens <n>',
      'tokens in one step when no request is decoding (prompt chunks only; default on a GPU max(4096, --max-batch-tokens), on the CPU --max-batch-tokens: off)',
      parseIntArg(1),
    )
    .option('--max-context <n>', 'most tokens one request may hold, prompt and completion (default min(4096, max_position_embeddings))', parseIntArg(2))
    .option('--kv-blocks <n>', 'KV-cache blocks of 16 tokens in the pool (default: max-sequences full contexts)', parseIntArg(1))
    .option('--max-queue <n>', 'requests that may wait for a sequence; more get 429', parseIntArg(0), 256)
    .option('--engine <kind>', "'native' (one batched forward a step; the default on the CPU and CUDA) or 'session' (a Session a sequence; the default on HIP)", (v: string) => {
      if (v !== 'native' && v !== 'session') throw new InvalidArgumentError("expected 'native' or 'session'.");
      return v;
    })
    .option('--pipeline-decode', "queue each decode step before the last one's ids are back (engine 'native'; the default on CUDA)")
    .option('--no-pipeline-decode', 'one decode step at a time (the default on the CPU and HIP)')
    .option('--stored-responses <n>', 'Responses API responses kept in memory for previous_response_id and GET /v1/responses/{id} (0: none)', parseIntArg(0), 1000)
    .option('--cors <origins>', "browser origins allowed to call the API, comma-separated ('http://localhost:5173,https://app.example'), or '*' (default: none)", (v: string) =>
      v.split(',').map((o) => o.trim()).filter((o) => o !== ''))
    .option('--api-key <key>', "require 'Authorization: Bearer <key>' on /v1 requests (default: $GPT_OSS_API_KEY; unset: no key)")
    .option('--shutdown-timeout <ms>', 'on SIGINT/SIGTERM, how long in-flight requests may finish before they are cancelled', parseIntArg(0), 10_000)
    .action(async (dir: string, flags: ServeFlags) => {
      const maxSequences = flags.maxSequences;
      const maxBatchTokens = Math.max(flags.maxBatchTokens, maxSequences);
      if (flags.apiKey === '') throw new RangeError('--api-key must not be empty (leave it out to serve without a key)');
      // checked before the (long) load; createEngine checks it again
      if (flags.maxPrefillTokens !== undefined && flags.maxPrefillTokens < maxBatchTokens)
        throw new RangeError(
          `--max-prefill-tokens (${flags.maxPrefillTokens}) must be at least --max-batch-tokens (${maxBatchTokens}${maxBatchTokens > flags.maxBatchTokens ? ', raised to --max-sequences' : ''}): it is the budget of a step with nothing decoding`,
        );
      const model = await loadWithProgress(dir, { device: flags.device, kvCache: flags.kvCache, activations: flags.activations });
      const engine = model.createEngine({
        maxSequences,
        maxBatchTokens,
        ...(flags.maxPrefillTokens !== undefined ? { maxPrefillTokens: flags.maxPrefillTokens } : {}),
        maxQueue: flags.maxQueue,
        ...(flags.engine !== undefined ? { backend: flags.engine } : {}),
        ...(flags.pipelineDecode !== undefined ? { pipelineDecode: flags.pipelineDecode } : {}),
        ...(flags.maxContext !== undefined ? { maxContext: flags.maxContext } : {}),
        ...(flags.kvBlocks !== undefined ? { kvBlocks: flags.kvBlocks } : {}),
      });
      const apiKey = flags.apiKey ?? (process.env.GPT_OSS_API_KEY || undefined);
      const server = createServer(engine, {
        modelName: flags.modelName ?? basename(resolve(dir)),
        storedResponses: flags.storedResponses,
        ...(flags.cors !== undefined ? { corsOrigins: flags.cors } : {}),
        ...(apiKey !== undefined ? { apiKey } : {}),
      });
      const { url } = await server.listen(flags.port, flags.host);
      process.stderr.write(
        `gpt-oss: serving '${server.context.modelName}' on ${url}/v1 (${model.device}; ${maxSequences} sequences, context ${engine.maxContext}, ${engine.backend.totalBlocks} KV blocks, steps of ${engine.maxBatchTokens} tokens, ${engine.maxPrefillTokens} with nothing decoding)\n`,
      );
      process.stdout.write(`${url}\n`);
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) {
            process.stderr.write(`gpt-oss: ${signal} again, exiting now\n`);
            process.exit(130);
          }
          stopping = true;
          process.stderr.write(`gpt-oss: ${signal}: finishing in-flight requests (up to ${flags.shutdownTimeout} ms)\n`);
          void server
            .close(flags.shutdownTimeout)
            .then(() => model.dispose())
            .then(done);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
