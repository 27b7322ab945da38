// Typed wrappers over the native `ops`: one backend op per call, synchronous, on the tensors'
// device. For tests and microbenchmarks; the model itself runs these in native code. Outputs are
// preallocated tensors (`out`), as in native/model/backend.h, whose comments define each op.
import { native } from './native.js';
import type { Tensor } from './tensor.js';

/** CPU kernel levels: the *vnni levels differ from the one below only in the q8 MXFP4 kernel (vpdpbusd). */
export type CpuIsa = 'scalar' | 'avx2' | 'avxvnni' | 'avx512' | 'avx512vnni' | 'neon';

/** A layer's experts, Hugging Face form: gate and up interleaved in one tensor. */
export interface MoeWeightsHf {
  /** mxfp4 [E, 2*I, H]; rows interleaved: even = gate, odd = up */
  gateUp: Tensor;
  /** bf16 or f32 [E, 2*I] */
  gateUpBias: Tensor;
  /** mxfp4 [E, H, I] (or mxfp4-ggml on the CPU) */
  down: Tensor;
  /** bf16 or f32 [E, H] */
  downBias: Tensor;
  /**
   * What the CPU expert kernels multiply the weights with: 'f32' (default, exact) or 'q8' (activations
   * rounded to int8 per 32-block; LoadOptions.activations, which covers Q8_0 dense layers too: see
   * linear). CUDA and ops.reference use f32 always.
   */
  activations?: ExpertActivations;
}

/** GGUF form (CPU): gate and up apart, in ggml's MXFP4 blocks (gate row j = interleaved row 2j). */
export interface MoeWeightsGguf {
  /** mxfp4-ggml [E, I, H] */
  gate: Tensor;
  /** bf16 or f32 [E, I] */
  gateBias: Tensor;
  up: Tensor;
  upBias: Tensor;
  /** mxfp4-ggml [E, H, I] */
  down: Tensor;
  downBias: Tensor;
  /** as MoeWeightsHf.activations */
  activations?: ExpertActivations;
}

export type MoeWeights = MoeWeightsHf | MoeWeightsGguf;
/** The activation modes of the expert kernels (LoadOptions.activations): 'q8' a CPU mode, 'bf16' a CUDA one. */
export const EXPERT_ACTIVATIONS = ['f32', 'q8', 'bf16'] as const;
export type ExpertActivations = (typeof EXPERT_ACTIVATIONS)[number];

export interface SwigluParams {
  limit?: number; // default 7
  alpha?: number; // default 1.702
}

export interface SampleParams {
  temperature?: number; // 0 = argmax
  topK?: number; // 0 = off
  topP?: number; // 1 = off
  minP?: number; // 0 = off
}

export interface KernelOps {
  embedding(tokens: Tensor, table: Tensor, out: Tensor): void;
  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void;
  /**
   * out = x W^T (+ bias). `activations` 'q8' (CPU; q8_0 and MXFP4 weights in either block form, else
   * ignored): x rounded to int8 per 32-block and integer dot products, as a model loaded with activations
   * 'q8' multiplies its Q8_0 layers and its experts.
   */
  linear(x: Tensor, weight: Tensor, bias: Tensor | null, out: Tensor, activations?: ExpertActivations): void;
  rope(x: Tensor, positions: Tensor, invFreq: Tensor, scale: number): void;
  kvStore(k: Tensor, v: Tensor, positions: Tensor, kCache: Tensor, vCache: Tensor): void;
  attention(q: Tensor, kCache: Tensor, vCache: Tensor, sinks: Tensor, positions: Tensor, slidingWindow: number,
    softmaxScale: number, out: Tensor): void;
  /** attention() over a pool of blocks: query i reads sequence seqOfToken[i]'s keys through blockTables[seq]. */
  pagedAttention(q: Tensor, kCache: Tensor, vCache: Tensor, sinks: Tensor, positions: Tensor, seqOfToken: Tensor,
    blockTables: Tensor, blockSize: number, slidingWindow: number, softmaxScale: number, out: Tensor): void;
  router(x: Tensor, weight: Tensor, bias: Tensor, k: number, expertIdx: Tensor, expertWeight: Tensor): void;
  moe(x: Tensor, expertIdx: Tensor, expertWeight: Tensor, weights: MoeWeights, swiglu: SwigluParams | undefined,
    out: Tensor): void;
  add(acc: Tensor, x: Tensor): void;
  mxfp4Dequantize(packed: Tensor, out: Tensor): void;
  sample(logits: Tensor, params: SampleParams, uniform: number): number;
}

const h = (t: Tensor | null | undefined): unknown => (t == null ? t : t.handle);

// `n` fetches the native op table at each call, so importing this module does not load the addon.
function wrap(opTable: () => any): KernelOps {
  const n = (): any => opTable();
  return {
    embedding: (tokens, table, out) => n().embedding(h(tokens), h(table), h(out)),
    rmsnorm: (x, weight, eps, out) => n().rmsnorm(h(x), h(weight), eps, h(out)),
    linear: (x, weight, bias, out, activations) => n().linear(h(x), h(weight), h(bias), h(out), activations),
    rope: (x, positions, invFreq, scale) => n().rope(h(x), h(positions), h(invFreq), scale),
    kvStore: (k, v, positions, kCache, vCache) => n().kvStore(h(k), h(v), h(positions), h(kCache), h(vCache)),
    attention: (q, kCache, vCache, sinks, positions, slidingWindow, softmaxScale, out) =>
      n().attention(h(q), h(kCache), h(vCache), h(sinks), h(positions), slidingWindow, softmaxScale, h(out)),
    pagedAttention: (q, kCache, vCache, sinks, positions, seqOfToken, blockTables, blockSize, slidingWindow, softmaxScale, out) =>
      n().pagedAttention(h(q), h(kCache), h(vCache), h(sinks), h(positions), h(seqOfToken), h(blockTables), blockSize,
        slidingWindow, softmaxScale, h(out)),
    router: (x, weight, bias, k, expertIdx, expertWeight) =>
      n().router(h(x), h(weight), h(bias), k, h(expertIdx), h(expertWeight)),
    moe: (x, expertIdx, expertWeight, w, swiglu, out) =>
      n().moe(h(x), h(expertIdx), h(expertWeight),
        'gate' in w
          ? { gate: h(w.gate), gateBias: h(w.gateBias), up: h(w.up), upBias: h(w.upBias), down: h(w.down), downBias: h(w.downBias),
              ...(w.activations !== undefined ? { activations: w.activations } : {}) }
          : { gateUp: h(w.gateUp), gateUpBias: h(w.gateUpBias), down: h(w.down), downBias: h(w.downBias),
              ...(w.activations !== undefined ? { activations: w.activations } : {}) },
        swiglu, h(out)),
    add: (acc, x) => n().add(h(acc), h(x)),
    mxfp4Dequantize: (packed, out) => n().mxfp4Dequantize(h(packed), h(out)),
    sample: (logits, params, uniform) => n().sample(h(logits), params, uniform),
  };
}

/** The backend ops, run on the tensors' device. */
export const ops: KernelOps = wrap(() => native.ops);
/** The scalar CPU references (plain loops, double accumulation) the fast kernels are tested against. */
export const reference: KernelOps = wrap(() => native.ops.reference);

export interface CpuInfo {
  isa: CpuIsa;
  bestIsa: CpuIsa;
  /** Every level this machine and build can run, lowest first (tests run each against scalar). */
  isas: CpuIsa[];
  threads: number;
  /** The pool picks, per kind of job, all threads or the caller alone by measured time (GPTOSS_POOL_ADAPTIVE). */
  adaptive: boolean;
  /** Jobs the adaptive pool ran on all threads / inline since start. */
  poolJobs: { parallel: number; inline: number };
}

export function cpuInfo(): CpuInfo {
  return native.ops.cpuInfo();
}
/** Turn the pool's adaptive choice (all threads or the caller alone, per kind of job) on or off. */
export function setPoolAdaptive(on: boolean): boolean {
  return native.ops.setPoolAdaptive(on);
}
/** Resize the CPU thread pool; returns the new size. */
export function setThreads(threads: number): number {
  return native.ops.setThreads(threads);
}
/** Force the CPU kernels' ISA level (clamped to what the CPU has); returns the level used. */
/** bf16/f16/f32 -> Q8_0 (CPU), the quantizer behind loadModel's denseWeights: 'q8'. */
export function quantizeQ8(src: Tensor, out: Tensor): void {
  native.ops.quantizeQ8(src.handle, out.handle);
}

/**
 * Experts in transformers' dequantized layout (src bf16/f16/f32 [E, C, R], out = x @ src[e]) -> MXFP4
 * [E, R, C] (CPU), the quantizer behind loadModel's experts: 'mxfp4'.
 */
export function quantizeMxfp4(src: Tensor, out: Tensor): void {
  native.ops.quantizeMxfp4(src.handle, out.handle);
}

/**
 * GGUF's MXFP4 expert blocks (src 'mxfp4-ggml' [..., R, C]) -> the Hugging Face MXFP4 layout (out 'mxfp4'
 * of the same shape; CPU): the codes and scales moved, not re-rounded. What loading a GGUF on a GPU does.
 */
export function mxfp4FromGgml(src: Tensor, out: Tensor): void {
  native.ops.mxfp4FromGgml(src.handle, out.handle);
}

/**
 * Experts [E, A, B] -> [E, B, A] (bf16, f16 or f32; CPU): transformers' dense layout [E, in, out] to the
 * [E, out, in] rows the CUDA kernels read, or back. What loadModel's experts: 'bf16' does to a fine-tuned
 * checkpoint's experts when it uploads them to CUDA (ops.moe on CUDA takes bf16 experts in that layout).
 */
export function transposeExperts(src: Tensor, out: Tensor): void {
  native.ops.transposeExperts(src.handle, out.handle);
}

export function setIsa(isa: CpuIsa): CpuIsa {
  return native.ops.setIsa(isa);
}
/** This machine's read bandwidth in GB/s (all threads summing a buffer of `megabytes`). */
export function readBandwidth(megabytes = 1024, repeats = 3): number {
  return native.ops.readBandwidth(megabytes, repeats);
}
