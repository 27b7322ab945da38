// loadModel: open and check a checkpoint, bind it on a device, run it.
import { native } from './native.js';
import type { NativeLoadGroup, NativeModel } from './addon-types.js';
import { openCheckpointAsync, type GgufSummary } from './loader/index.js';
import { resolveHfModel } from './hub.js';
import type { ModelConfig } from './loader/config.js';
import { Session } from './session.js';
import { NativeBatchBackend, type BatchBackendOptions } from './engine/native-backend.js';
import { Engine, type EngineOptions } from './engine/scheduler.js';
import { generate, type GenerateInput, type GenerateOptions, type GenerationStream } from './generate.js';
import { DeviceUnavailableError } from './errors.js';
import { toTokenIds } from './token-ids.js';
import { EXPERT_ACTIVATIONS, type ExpertActivations } from './ops.js';

/**
 * The activations mode a model loads with: the option, else GPTOSS_CPU_ACTIVATIONS (on the CPU only:
 * a CUDA model ignores the variable), else 'f32' (exact) on every device and ISA: q8 and bf16 change results
 * (bench/RESULTS.md, issue 17 and the twenty-first session), so they are only ever asked for. q8 is a CPU
 * mode, bf16 a CUDA one. `fn` names the caller in error messages.
 */
export function resolveActivations(request: unknown, device: string, fn = 'loadModel'): ExpertActivations {
  const fromEnv = request === undefined;
  const value = fromEnv ? (device === 'cpu' ? process.env.GPTOSS_CPU_ACTIVATIONS || 'f32' : 'f32') : request;
  const allowed: readonly unknown[] = fromEnv ? ['f32', 'q8'] : EXPERT_ACTIVATIONS; // bf16 is never the default
  if (!allowed.includes(value))
    throw new RangeError(
      `${fn}: ${fromEnv ? "GPTOSS_CPU_ACTIVATIONS must be 'f32' or 'q8'" : "option 'activations' must be 'f32', 'q8' or 'bf16'"}, got ${String(value)}`,
    );
  if (value === 'q8' && device !== 'cpu')
    throw new RangeError(`${fn}: option 'activations' 'q8' is a CPU mode; device ${device} multiplies f32 activations`);
  if (value === 'bf16' && !device.startsWith('cuda'))
    throw new RangeError(
      `${fn}: option 'activations' 'bf16' is a CUDA mode (the grouped expert GEMMs of prefill on Hopper); device ${device} multiplies ${device === 'cpu' ? "f32 or q8" : 'f32'} activations`,
    );
  return value as ExpertActivations;
}

/**
 * The KV cache's element types (LoadOptions.kvCache): 'f16', 'bf16' or 'f32' for K and V alike, or
 * 'f32k-f16v': K exact in f32, V in f16 (6 bytes a K/V element pair; the type that keeps deep
 * checkpoints within 1e-2 of an f32 cache, bench/RESULTS.md issue 12).
 */
export type KvCacheDtype = 'f16' | 'bf16' | 'f32' | 'f32k-f16v';
/** Every KvCacheDtype, in the order errors list them. */
export const KV_CACHE_DTYPES: readonly KvCacheDtype[] = ['f16', 'bf16', 'f32', 'f32k-f16v'];
/**
 * What a GPU model's KV cache holds when neither the option nor GPTOSS_CUDA_KV_CACHE names a type
 * (scripts/gpu-kv-ab.sh holds the rule that picked it; scripts/gpu-model-check.mjs gates it).
 */
export const GPU_DEFAULT_KV_CACHE: KvCacheDtype = 'f32k-f16v';

/**
 * The KV cache dtype a model loads with: the option, else GPTOSS_CUDA_KV_CACHE on a GPU device (the CPU
 * ignores that variable: its cache is f32), else the device's default (GPU 'f32k-f16v', CPU 'f32'). A dtype
 * the device cannot keep is a RangeError naming the option, never a silent substitute. `fn` names
 * the caller in error messages.
 */
export function resolveKvCache(request: unknown, device: string, fn = 'loadModel'): KvCacheDtype {
  const gpu = device !== 'cpu';
  const fromEnv = request === undefined && gpu && !!process.env.GPTOSS_CUDA_KV_CACHE;
  const value = request !== undefined ? request : fromEnv ? process.env.GPTOSS_CUDA_KV_CACHE : gpu ? GPU_DEFAULT_KV_CACHE : 'f32';
  const what = fromEnv ? 'GPTOSS_CUDA_KV_CACHE' : "option 'kvCache'";
  if (!(KV_CACHE_DTYPES as readonly unknown[]).includes(value))
    throw new RangeError(`${fn}: ${what} must be 'f16', 'bf16', 'f32' or 'f32k-f16v', got ${typeof value === 'string' ? `'${value}'` : String(value)}`);
  if (!gpu && value !== 'f32')
    throw new RangeError(`${fn}: ${what} '${value}' is not available on device cpu: the CPU backend's attention reads an f32 KV cache (use 'f32' or leave kvCache out)`);
  return value as KvCacheDtype;
}

/**
 * `auto` never picks a GPU path that has not yet run on that vendor's GPUs. On CUDA, GGUF files (the Q8_0
 * kernels and the ggml-layout upload) and bf16 experts run on the GPU: both passed on an H200 (bench/RESULTS.md,
 * "H200 run, seventh session": GGUF Q8_0 on CUDA vs the CPU 2.9e-4 with the f32k-f16v cache, GGUF greedy ==
 * safetensors on CUDA; bf16 experts gpu_check 25/25, tiny-a-bf16 vs transformers 1.49e-5, greedy 20/20). On
 * HIP neither has run on an AMD GPU (GGUF's sources are compiled for wave64, not run; the HIP backend refuses
 * bf16 experts), so `auto` keeps them on the CPU there, with the reason in fallbackReason. Naming the device
 * (`device: 'hip'`) runs GGUF there.
 */
export function autoDeviceForFormat(
  request: DeviceRequest,
  resolved: { device: string; fallbackReason?: string },
  format: 'safetensors' | 'gguf',
  bf16Experts = false,
): { device: string; fallbackReason?: string } {
  if (request !== 'auto' || !resolved.device.startsWith('hip') || (format !== 'gguf' && !bf16Experts)) return resolved;
  return {
    device: 'cpu',
    fallbackReason:
      format === 'gguf'
        ? `GGUF on hip: its kernels are compiled for AMD GPUs but have not yet run on one, so auto loads GGUF files on the CPU (device: '${resolved.device}' runs them)`
        : `experts 'bf16' on hip: the HIP backend does not run bf16 experts yet (their kernels are not checked for AMD's 64-lane wavefronts), so auto runs them on the CPU (experts: 'mxfp4' quantizes them for the GPU)`,
  };
}

/** Whether a checkpoint stores its experts dense (a fine-tuned bf16/f16/f32 save), not as MXFP4 blocks. */
export function hasDenseExperts(tensors: readonly { name: string }[]): boolean {
  return tensors.some((t) => t.name.endsWith('.mlp.experts.gate_up_proj') || t.name.endsWith('.mlp.experts.down_proj'));
}

export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}` | 'hip' | `hip:${number}`;

export interface LoadOptions {
  device?: DeviceRequest;
  /**
   * Dense weights (attention projections, LM head): 'as-stored' (default) runs them in the file's
   * dtype; 'q8' quantizes bf16/f16/f32 ones to Q8_0 at load (int8 with an f16 scale per 32 values:
   * fewer bytes a decode step reads, a small loss of fidelity; CPU and CUDA).
   */
  denseWeights?: 'as-stored' | 'q8';
  /**
   * Experts of a fine-tuned checkpoint saved in bf16 (transformers' Mxfp4Config(dequantize=True):
   * `mlp.experts.gate_up_proj` [E, H, 2I], `down_proj` [E, I, H]): 'mxfp4' (default) quantizes them to
   * MXFP4 at load (the official checkpoint's speed and memory; model.info says how long it took),
   * 'bf16' runs them as stored (exact; 4x the expert bytes; CPU and CUDA: CUDA transposes them to the kernels'
   * [E, out, in] rows at upload. HIP does not run them yet: `auto` keeps them on the CPU there and says so in
   * fallbackReason). Checkpoints with MXFP4 experts ignore it.
   */
  experts?: 'mxfp4' | 'bf16';
  /**
   * CPU: what the MXFP4 expert kernels and the Q8_0 dense layers (a GGUF's attention and LM head,
   * denseWeights 'q8') multiply the weights with. 'f32' (exact: the activations as they are) or 'q8' (each
   * 32-value block rounded to int8 with an f32 scale, as llama.cpp's q8_0: integer dot products, faster
   * where the kernels are compute-bound; bench/RESULTS.md gives its error). bf16 weights take f32 either
   * way. Default: GPTOSS_CPU_ACTIVATIONS when set, else 'f32' on every CPU. On AVX2 CPUs without AVX-512
   * 'q8' is the faster mode (llama.cpp's choice; decode 1.00-1.08x llama.cpp's against 0.80-0.94x exact) at a
   * cost in fidelity and batch invariance (bench/RESULTS.md, issue 17).
   * CUDA: 'f32' (default: the activations multiplied as bf16 hi + lo halves, ~f32) or 'bf16': the grouped MXFP4
   * expert GEMMs of prefill chunks with 128+ routed rows an expert on Hopper's wgmma tile (a 20b prompt of
   * 1,024+ tokens in one chunk) multiply the activations rounded to bf16, half the tensor-core work (H100: a
   * 2,048-token prefill 88 -> 73 ms; the MoE op's error 2.8e-3 relative L2 against f32, bench/RESULTS.md,
   * twenty-first session). Every other kernel, and other GPUs, run as 'f32'; results then depend on how a
   * prompt is chunked. Its error through a whole model is not yet measured.
   */
  activations?: ExpertActivations;
  /**
   * The KV cache's element type. GPU: 'f32k-f16v' (default: K exact in f32, V in f16; deep checkpoints
   * within 1e-3 of an f32 cache on an H200 at no decode cost, bench/RESULTS.md "H200 run, seventh session"),
   * 'bf16' (the earlier default: f32's range, 7 mantissa bits; 0.15-0.25 from an f32 cache on deep random
   * checkpoints), 'f16' (10 mantissa bits at the same bytes) or 'f32' (exact, twice bf16's memory and
   * attention bytes). CPU: 'f32' only (its attention kernels read f32; another value is a
   * RangeError). Default: GPTOSS_CUDA_KV_CACHE on a GPU when set, else the device's default.
   * model.info.kvCache says what the model runs with.
   */
  kvCache?: KvCacheDtype;
  /**
   * Called as the load advances: bytes done of total. On the CPU these are the checkpoint files read
   * into memory (page-in, when they fit in 3/4 of RAM); on a GPU the weight bytes uploaded.
   */
  onProgress?: (done: number, total: number) => void;
  /** `hf:` models: called as the files download (bytes done of total, cached files included). */
  onDownloadProgress?: (done: number, total: number) => void;
}

export interface ModelInfo {
  /**
   * Where the weights came from: 'checkpoint' (loadModel: read from files) or 'synthetic'
   * (createSyntheticModel: random weights generated in memory, for benchmarks; they mean nothing).
   */
  source: 'checkpoint' | 'synthetic';
  device: string;
  backend: string;
  /** What the expert kernels and Q8_0 dense layers multiply the weights with (LoadOptions.activations). */
  activations: ExpertActivations;
  /** The KV cache's element type of this model's sessions and batches (LoadOptions.kvCache). */
  kvCache: KvCacheDtype;
  /** Why `auto` did not pick CUDA (absent when it did, or when a device was named). */
  fallbackReason?: string;
  /** Size of the checkpoint's files (0 for synthetic weights). */
  bytesOnDisk: number;
  weightBytes: number;
  /** The checkpoint's files: safetensors shards or the GGUF file (none for synthetic weights). */
  files: string[];
  /** 'safetensors' or 'gguf' (loadModel), 'synthetic' (createSyntheticModel). */
  format: 'safetensors' | 'gguf' | 'synthetic';
  /**
   * Per tensor group (embedding, attention, router, experts, norms, lmHead): dtypes in the file and
   * as run, bytes in the file and in memory, and bytes converted at load. Weights the model runs
   * from the file mapping cost no memory beyond the page cache (RSS grows as pages are touched).
   */
  groups: NativeLoadGroup[];
  /** What was converted at load, one line each ("lmHead: bf16 -> q8_0 (denseWeights q8)"); empty when nothing was. */
  conversions: string[];
  /**
   * Seconds spent converting at load (part of loadSeconds): the conversion itself, without the time it
   * waited for the file (readWaitSeconds).
   */
  convertSeconds: number;
  /**
   * Seconds the conversions at load waited for file reads (part of loadSeconds): a fine-tuned
   * checkpoint's bf16 experts are read ahead of their quantization on a thread of their own, so this is
   * the part of the read the conversion could not hide (0 when the file was in the page cache).
   */
  readWaitSeconds: number;
  /**
   * Seconds the CPU load spent mapping the tensors the model runs from in place (the page-in, when they
   * fit in 3/4 of RAM; part of loadSeconds; 0 otherwise and on a GPU).
   */
  pageInSeconds: number;
  /** Seconds loadModel took, parsing headers to the bound model (0 for synthetic weights). */
  loadSeconds: number;
  /** GGUF files: version, architecture, tensor types, chat template and tokenizer metadata. */
  gguf?: GgufSummary;
  /** Synthetic weights only: the seed of the generator. */
  seed?: number;
  /** Synthetic weights only: the preset shape, when one was named. */
  preset?: string;
}

/** @internal What a GptOssModel was made from (loadModel: a checkpoint; createSyntheticModel: a generator). */
export type ModelOrigin =
  | { source: 'checkpoint'; config: ModelConfig; files: string[]; bytesOnDisk: number; format: 'safetensors' | 'gguf'; loadSeconds: number; gguf?: GgufSummary }
  | { source: 'synthetic'; config: ModelConfig; seed: number; preset?: string };

/**
 * Which device `request` means on this machine. `auto` takes the first usable of CUDA, HIP, CPU and
 * says in `fallbackReason` why each GPU backend was passed over; a named GPU backend that cannot run
 * here is a DeviceUnavailableError carrying the native reason. `fn` names the caller in errors.
 */
export function resolveDevice(request: DeviceRequest = 'auto', fn = 'loadModel'): { device: string; fallbackReason?: string } {
  if (request === 'cpu') return { device: 'cpu' };
  if (request === 'auto') {
    const cudaReason = native.cudaUnavailableReason();
    if (!cudaReason) return { device: 'cuda:0' };
    const hipReason = native.hipUnavailableReason();
    if (!hipReason) return { device: 'hip:0' };
    return { device: 'cpu', fallbackReason: `CUDA unavailable: ${cudaReason}; HIP unavailable: ${hipReason}` };
  }
  const m = /^(cuda|hip)(?::(\d+))?$/.exec(request);
  if (!m) throw new RangeError(`${fn}: unknown device '${request}' (expected auto, cpu, cuda, cuda:N, hip or hip:N)`);
  const backend = m[1] as 'cuda' | 'hip';
  const reason = backend === 'cuda' ? native.cudaUnavailableReason() : native.hipUnavailableReason();
  if (reason) throw new DeviceUnavailableError(fn, request, backend, reason);
  const index = m[2] === undefined ? 0 : Number(m[2]);
  const count = backend === 'cuda' ? native.cudaDeviceCount() : native.hipDeviceCount();
  if (index >= count) throw new RangeError(`${fn}: device '${request}' does not exist (${count} ${backend.toUpperCase()} device(s))`);
  return { device: `${backend}:${index}` };
}

export interface SessionOptions {
  /** KV-cache capacity in tokens (default min(4096, max_position_embeddings)). */
  maxContext?: number;
}

export class GptOssModel {
  readonly config: ModelConfig;
  readonly info: ModelInfo;
  #native: NativeModel | null;

  /** @internal use loadModel or createSyntheticModel */
  constructor(nativeModel: NativeModel, origin: ModelOrigin, fallbackReason?: string) {
    this.#native = nativeModel;
    this.config = origin.config;
    const i = nativeModel.info();
    // What is on disk: a checkpoint's files, or nothing for generated weights.
    const disk =
      origin.source === 'checkpoint'
        ? { bytesOnDisk: origin.bytesOnDisk, files: origin.files, format: origin.format, loadSeconds: origin.loadSeconds }
        : { bytesOnDisk: 0, files: [], format: 'synthetic' as const, loadSeconds: 0 };
    this.info = {
      source: origin.source,
      device: i.device,
      backend: i.backend,
      activations: i.activations,
      kvCache: i.kvCache,
      ...(fallbackReason ? { fallbackReason } : {}),
      bytesOnDisk: disk.bytesOnDisk,
      weightBytes: i.weightBytes,
      files: disk.files,
      format: disk.format,
      groups: i.groups,
      conversions: i.conversions,
      convertSeconds: i.convertSeconds,
      readWaitSeconds: i.readWaitSeconds,
      pageInSeconds: i.pageInSeconds,
      loadSeconds: disk.loadSeconds,
      ...(origin.source === 'checkpoint'
        ? origin.gguf
          ? { gguf: origin.gguf }
          : {}
        : { seed: origin.seed, ...(origin.preset !== undefined ? { preset: origin.preset } : {}) }),
    };
  }

  get device(): string {
    return this.info.device;
  }

  #get(fn: string): NativeModel {
    if (!this.#native) throw new Error(`${fn}: the model was disposed`);
    return this.#native;
  }

  createSession(options: SessionOptions = {}): Session {
    if (options === null || typeof options !== 'object')
      throw new TypeError(`createSession: argument 'options' must be an object, got ${options === null ? 'null' : typeof options}`);
    const maxContext = options.maxContext ?? Math.min(4096, this.config.maxPositionEmbeddings);
    if (typeof maxContext !== 'number' || !Number.isSafeInteger(maxContext) || maxContext < 1)
      throw new RangeError(`createSession: options.maxContext must be an integer >= 1, got ${String(maxContext)}`);
    return new Session(new native.NativeSession(this.#get('createSession'), maxContext), this.config.vocabSize);
  }

  /**
   * The batched step over a paged KV cache (lib/engine/backend.ts's StepBackend): many sequences,
   * one forward pass a step. CPU and CUDA models; on HIP it throws (never a silent fallback).
   */
  createBatchBackend(options: BatchBackendOptions): NativeBatchBackend {
    const nativeModel = this.#get('createBatchBackend');
    if (options === null || typeof options !== 'object') throw new TypeError('createBatchBackend: options must be an object { kvBlocks, blockSize?, maxSequences? }');
    const { kvBlocks, blockSize = 16, maxSequences = 64, padDecodeSteps, pipelineDecode, prefixCache = true } = options;
    if (typeof prefixCache !== 'boolean') throw new TypeError(`createBatchBackend: prefixCache must be a boolean, got ${typeof prefixCache}`);
    return new NativeBatchBackend(
      new native.NativeBatch(nativeModel, {
        kvBlocks,
        blockSize,
        maxSequences,
        ...(padDecodeSteps !== undefined ? { padDecodeSteps } : {}),
        ...(pipelineDecode !== undefined ? { pipelineDecode } : {}),
      }),
      prefixCache,
    );
  }

  /** generate(this, input, options): see lib/generate.ts. */
  generate(input: GenerateInput, options?: GenerateOptions): GenerationStream {
    return generate(this, input, options);
  }

  /**
   * A continuous-batching engine on this model (lib/engine/scheduler.ts): engine.generate() takes
   * generate()'s input and options and returns the same GenerationStream; requests run together.
   */
  createEngine(options: EngineOptions = {}): Engine {
    this.#get('createEngine');
    return new Engine(this, options);
  }

  /** Logits of every position, [tokens.length * vocabSize], from a fresh KV cache. */
  async forward(tokens: ArrayLike<number>): Promise<Float32Array> {
    const ids = toTokenIds(tokens, this.config.vocabSize, 'forward');
    if (ids.length === 0) throw new RangeError("forward: argument 'tokens' is empty");
    this.#get('forward');
    const maxContext = ids.length;
    if (maxContext > this.config.maxPositionEmbeddings)
      throw new RangeError(`forward: ${maxContext} tokens exceed max_position_embeddings ${this.config.maxPositionEmbeddings}`);
    const session = this.createSession({ maxContext });
    try {
      return await session.prefillAll(ids);
    } finally {
      await session.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.#native?.dispose();
    this.#native = null;
  }
}

/**
 * Loads a checkpoint folder, a GGUF file (a .gguf path, an Ollama blob, a folder holding one .gguf, or any part of a
 * split GGUF: all parts are opened),
 * or `hf:org/name[@revision]`: a Hugging Face repository, downloaded into the hub cache first when it
 * is not there (lib/hub.ts; HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT honoured).
 */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<GptOssModel> {
  const t0 = performance.now();
  if (typeof dir !== 'string' || dir === '')
    throw new TypeError(`loadModel: argument 'dir' must be a non-empty path to a checkpoint directory, got ${dir === '' ? "''" : dir === null ? 'null' : typeof dir}`);
  if (options === null || typeof options !== 'object')
    throw new TypeError(`loadModel: argument 'options' must be an object, got ${options === null ? 'null' : typeof options}`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new TypeError('loadModel: options.onProgress must be a function');
  if (options.device !== undefined && typeof options.device !== 'string')
    throw new TypeError(`loadModel: options.device must be a string (auto, cpu, cuda or cuda:N), got ${typeof options.device}`);
  const denseWeights = options.denseWeights ?? 'as-stored';
  if (denseWeights !== 'as-stored' && denseWeights !== 'q8')
    throw new RangeError(`loadModel: options.denseWeights must be 'as-stored' or 'q8', got ${JSON.stringify(denseWeights)}`);
  const experts = options.experts ?? 'mxfp4';
  if (experts !== 'mxfp4' && experts !== 'bf16')
    throw new RangeError(`loadModel: options.experts must be 'mxfp4' or 'bf16', got ${JSON.stringify(experts)}`);
  const resolved = resolveDevice(options.device ?? 'auto');
  // Option errors come before any file is read; a format that moves `auto` to another device (a GGUF
  // file stays on the CPU) resolves them again for that device, whose defaults and limits differ.
  let activations = resolveActivations(options.activations, resolved.device);
  let kvCache = resolveKvCache(options.kvCache, resolved.device);
  if (dir.startsWith('hf:')) dir = await resolveHfModel(dir, { onProgress: options.onDownloadProgress });
  const checkpoint = await openCheckpointAsync(dir); // no file call on the event loop
  const { device, fallbackReason } = autoDeviceForFormat(
    options.device ?? 'auto',
    resolved,
    checkpoint.format,
    experts === 'bf16' && hasDenseExperts(checkpoint.tensors),
  );
  if (device !== resolved.device) {
    activations = resolveActivations(options.activations, device);
    kvCache = resolveKvCache(options.kvCache, device);
  }
  const nativeModel = await native.NativeModel.load(
    {
      config: checkpoint.config,
      configFile: checkpoint.configFile,
      files: checkpoint.files,
      tensors: checkpoint.tensors,
      device,
      format: checkpoint.format,
      denseWeights,
      experts,
      activations,
      kvCache,
    },
    options.onProgress,
  );
  return new GptOssModel(
    nativeModel,
    {
      source: 'checkpoint',
      config: checkpoint.config,
      files: checkpoint.files,
      bytesOnDisk: checkpoint.bytesOnDisk,
      format: checkpoint.format,
      loadSeconds: (performance.now() - t0) / 1000,
      ...(checkpoint.gguf ? { gguf: checkpoint.gguf } : {}),
    },
    fallbackReason,
  );
}
