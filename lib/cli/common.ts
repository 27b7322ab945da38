// What every command shares: loading a model with a progress bar, option parsing, one-line errors.
import { InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { KV_CACHE_DTYPES, loadModel, type DeviceRequest, type GptOssModel, type KvCacheDtype, type LoadOptions } from '../model.js';
import { EXPERT_ACTIVATIONS } from '../ops.js';

type DenseWeights = NonNullable<LoadOptions['denseWeights']>;
type Experts = NonNullable<LoadOptions['experts']>;
type Activations = NonNullable<LoadOptions['activations']>;
import type { GenerateOptions } from '../generate.js';
import type { ReasoningEffort } from '../harmony/index.js';

/** An error the user can act on, printed as one line without a stack. */
export class UsageError extends Error {}

/** `gpt-oss: <message>`, on one line (multi-line messages are joined). */
export function formatError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return `gpt-oss: ${message.trim().replace(/\s*\n\s*/g, ' ')}`;
}

/** The load options a command takes from its flags (absent: loadModel's defaults). */
export interface CliLoadOptions {
  device: DeviceRequest;
  denseWeights?: DenseWeights;
  kvCache?: KvCacheDtype;
  experts?: Experts;
  activations?: Activations;
}

/**
 * Loads a checkpoint folder; when stderr is a terminal, a progress bar of what takes the time: the
 * page-in of the files on the CPU, the upload on a GPU (native Model::load counts those bytes).
 */
export async function loadWithProgress(dir: string, options: CliLoadOptions): Promise<GptOssModel> {
  const { device, denseWeights = 'as-stored', experts = 'mxfp4' } = options;
  const load: LoadOptions = {
    device,
    denseWeights,
    experts,
    ...(options.kvCache !== undefined ? { kvCache: options.kvCache } : {}),
    // absent: loadModel's default (GPTOSS_CPU_ACTIVATIONS on the CPU, else f32)
    ...(options.activations !== undefined ? { activations: options.activations } : {}),
  };
  if (!process.stderr.isTTY) return loadModel(dir, load);
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'loading {bar} {percentage}% | {done}/{all} MiB | {rate} MiB/s',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
  let started = false;
  const t0 = performance.now();
  const rate = (b: number): string => (b / 2 ** 20 / Math.max(1e-3, (performance.now() - t0) / 1000)).toFixed(0);
  try {
    return await loadModel(dir, {
      ...load,
      onProgress: (done, total) => {
        if (!started) {
          bar.start(total, 0, { done: '0', all: mib(total), rate: '0' });
          started = true;
        }
        bar.update(done, { done: mib(done), all: mib(total), rate: rate(done) });
      },
    });
  } finally {
    if (started) bar.stop();
  }
}

export const DEVICES = /^(auto|cpu|(cuda|hip)(:\d+)?)$/;

export function parseDevice(value: string): DeviceRequest {
  if (!DEVICES.test(value)) throw new InvalidArgumentError('expected auto, cpu, cuda, cuda:N, hip or hip:N.');
  return value as DeviceRequest;
}

export function parseIntArg(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}.`);
    return n;
  };
}

export function parseNumberArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}].`);
    return n;
  };
}

export function parseEffort(value: string): ReasoningEffort {
  if (value !== 'low' && value !== 'medium' && value !== 'high') throw new InvalidArgumentError('expected low, medium or high.');
  return value;
}

/** Options shared by `generate` and `chat`. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-tokens <n>', 'most tokens to generate per reply', parseIntArg(0))
    .option('--temperature <t>', 'sampling temperature, 0 = greedy (default 1)', parseNumberArg(0, 100))
    .option('--top-p <p>', 'nucleus sampling: keep the smallest set with this much probability', parseNumberArg(Number.MIN_VALUE, 1))
    .option('--top-k <k>', 'keep only the k most likely tokens (0 = off)', parseIntArg(0))
    .option('--min-p <p>', 'keep tokens with p >= min-p * p(most likely)', parseNumberArg(0, 1))
    .option('--seed <s>', 'random seed (same seed, same output)', parseIntArg(Number.MIN_SAFE_INTEGER))
    .option('--effort <level>', 'reasoning effort: low, medium or high', parseEffort)
    .option('--reasoning', 'also show the analysis channel (on stderr)')
    .option('--device <device>', 'auto, cpu, cuda, cuda:N, hip or hip:N', parseDevice, 'auto' as DeviceRequest)
    .option('--dense-weights <format>', 'as-stored, or q8: attention and LM head as 8-bit (Q8_0) at load', parseDenseWeights, 'as-stored' as DenseWeights)
    .option('--kv-cache <dtype>', KV_CACHE_HELP, parseKvCache)
    .option('--experts <format>', EXPERTS_HELP, parseExperts, 'mxfp4' as Experts)
    .option('--activations <mode>', ACTIVATIONS_HELP, parseActivations);
}

export const EXPERTS_HELP = "a fine-tuned checkpoint's bf16 experts: mxfp4 (quantized at load, default) or bf16 (run as stored)";

export function parseExperts(v: string): Experts {
  if (v !== 'mxfp4' && v !== 'bf16') throw new InvalidArgumentError(`expected mxfp4 or bf16, got '${v}'`);
  return v;
}

export const KV_CACHE_HELP = 'KV cache element type on a GPU: f32k-f16v (f32 K, f16 V; default), f16, bf16 or f32 (the CPU keeps f32)';

export const ACTIVATIONS_HELP =
  "what the experts multiply the weights with: f32 (exact; default, or GPTOSS_CPU_ACTIVATIONS on the CPU), q8 (CPU: int8 blocks, faster on AVX2-only CPUs) or bf16 (CUDA: bf16 activations in Hopper's prefill expert GEMMs, faster prefill)";

export function parseActivations(v: string): Activations {
  if (!(EXPERT_ACTIVATIONS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected f32, q8 or bf16, got '${v}'`);
  return v as Activations;
}

export function parseKvCache(v: string): KvCacheDtype {
  if (!(KV_CACHE_DTYPES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected f16, bf16, f32 or f32k-f16v, got '${v}'`);
  return v as KvCacheDtype;
}

export function parseDenseWeights(v: string): DenseWeights {
  if (v !== 'as-stored' && v !== 'q8') throw new InvalidArgumentError(`expected as-stored or q8, got '${v}'`);
  return v;
}

export interface SamplingFlags {
  denseWeights?: DenseWeights;
  experts?: Experts;
  activations?: Activations;
  kvCache?: KvCacheDtype;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  effort?: ReasoningEffort;
  reasoning?: boolean;
  device: DeviceRequest;
}

export function generateOptions(flags: SamplingFlags): GenerateOptions {
  const o: GenerateOptions = {};
  if (flags.maxTokens !== undefined) o.maxTokens = flags.maxTokens;
  if (flags.temperature !== undefined) o.temperature = flags.temperature;
  if (flags.topP !== undefined) o.topP = flags.topP;
  if (flags.topK !== undefined) o.topK = flags.topK;
  if (flags.minP !== undefined) o.minP = flags.minP;
  if (flags.seed !== undefined) o.seed = flags.seed;
  return o;
}
