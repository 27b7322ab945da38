// Typed tensors over native storage (host memory, a file mapping, or device memory).
import { native } from './native.js';
import type { DTypeName, NativeTensor } from './addon-types.js';

export type DType = DTypeName;
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}` | 'hip' | `hip:${number}`;

type HostArray = Float32Array | Int32Array | Uint16Array | Uint8Array;

const ELEMENT_BYTES: Record<Exclude<DType, 'mxfp4'>, number> = { f32: 4, bf16: 2, i32: 4, u8: 1 };

/** bf16 bits (round to nearest even) from float32 values, as torch's .to(torch.bfloat16). */
export function toBf16(values: ArrayLike<number>): Uint16Array {
  const f = Float32Array.from(values);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** float32 values from bf16 bits (exact). */
export function fromBf16(bits: Uint16Array): Float32Array {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}

export class Tensor {
  /** The native object; ops take it. */
  readonly handle: NativeTensor;

  private constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  static fromNative(handle: NativeTensor): Tensor {
    return new Tensor(handle);
  }

  /** A zero-filled tensor. */
  static empty(dtype: DType, shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    return new Tensor(new native.Tensor(dtype, shape, device));
  }

  static fromF32(data: Float32Array | readonly number[], shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    return new Tensor(new native.Tensor('f32', shape, device, arr));
  }

  /** bf16 tensor from float values (rounded) or from raw bf16 bits (Uint16Array). */
  static fromBf16(data: Float32Array | Uint16Array | readonly number[], shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    const bits = data instanceof Uint16Array ? data : toBf16(data);
    return new Tensor(new native.Tensor('bf16', shape, device, bits));
  }

  static fromI32(data: Int32Array | readonly number[], shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    const arr = data instanceof Int32Array ? data : Int32Array.from(data);
    return new Tensor(new native.Tensor('i32', shape, device, arr));
  }

  static fromU8(data: Uint8Array, shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    return new Tensor(new native.Tensor('u8', shape, device, data));
  }

  /**
   * Packed MXFP4 weights of logical shape [..., rows, cols]: `blocks` holds two E2M1 codes a byte
   * (low nibble first, cols/2 bytes a row) and `scales` one E8M0 byte per 32 values.
   */
  static fromMxfp4(blocks: Uint8Array, scales: Uint8Array, shape: readonly number[], device: DeviceName = 'cpu'): Tensor {
    return new Tensor(new native.Tensor('mxfp4', shape, device, blocks, scales));
  }

  get dtype(): DType {
    return this.handle.dtype;
  }
  get shape(): number[] {
    return this.handle.shape;
  }
  get device(): string {
    return this.handle.device;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get nbytes(): number {
    return this.handle.nbytes;
  }

  /** A copy of the contents as the matching TypedArray (bf16 as raw bits; mxfp4 as its packed blocks). */
  read(): HostArray {
    const buf = this.handle.read();
    switch (this.dtype) {
      case 'f32': return new Float32Array(buf);
      case 'i32': return new Int32Array(buf);
      case 'bf16': return new Uint16Array(buf);
      default: return new Uint8Array(buf);
    }
  }

  /** Contents as float32 (bf16 widened exactly; f32 copied). */
  toFloat32(): Float32Array {
    if (this.dtype === 'f32') return new Float32Array(this.handle.read());
    if (this.dtype === 'bf16') return fromBf16(new Uint16Array(this.handle.read()));
    throw new TypeError(`Tensor.toFloat32: not defined for dtype ${this.dtype}`);
  }

  readScales(): Uint8Array {
    return new Uint8Array(this.handle.readScales());
  }

  to(device: DeviceName): Tensor {
    return new Tensor(this.handle.to(device));
  }

  /** Releases the storage now rather than at garbage collection. */
  dispose(): void {
    this.handle.dispose();
  }

  static elementBytes(dtype: Exclude<DType, 'mxfp4'>): number {
    return ELEMENT_BYTES[dtype];
  }
}
