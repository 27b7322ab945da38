// Types for scripts/gguf-writer.mjs (Hugging Face gpt-oss checkpoint -> GGUF in llama.cpp's layout).
export type GgufWriterType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'MXFP4';
export declare const GGML_TYPE: Readonly<Record<GgufWriterType, number>>;
export declare function ggmlBytes(type: GgufWriterType, numel: number): number;
export declare function bf16ToF32(h: number): number;
export declare function f32ToF16(x: number): number;
export declare function quantizeQ8Block(v: ArrayLike<number>, out: Uint8Array, o: number): void;
export declare function repackMxfp4Block(codes: Uint8Array, co: number, scale: number, out: Uint8Array, o: number): void;
export interface GgufPlanEntry { name: string; source: string; type: GgufWriterType; shape: number[]; kind: string }
export interface GgufWriteOptions {
  dense?: 'BF16' | 'F32' | 'F16' | 'Q8_0';
  embedding?: 'BF16' | 'F32' | 'F16' | 'Q8_0';
  vectors?: 'F32' | 'BF16';
  router?: 'F32' | 'BF16';
  chatTemplate?: string;
  name?: string;
  alignment?: number;
  architecture?: string;
  fileType?: number;
  /** N > 1: llama.cpp's gguf-split layout, N files `<out without .gguf>-0000i-of-0000N.gguf`. */
  splits?: number;
  /** 'placeholder': a vocabulary of placeholder tokens in the metadata (llama.cpp needs one); default 'none'. */
  vocab?: 'none' | 'placeholder';
}
export declare function ggufPlan(config: Record<string, unknown>, opts?: GgufWriteOptions): GgufPlanEntry[];
export interface GgufWriteResult {
  tensors: { name: string; type: GgufWriterType; shape: number[]; offset: number; length: number; file: string }[];
  fileBytes: number;
  files: string[];
  dataStart: number;
}
export declare function writeGgufFromCheckpoint(dir: string, out: string, opts?: GgufWriteOptions): Promise<GgufWriteResult>;
