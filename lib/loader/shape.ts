// The shapes a checkpoint's tensor table may declare, checked where the table is read (safetensors.ts,
// gguf.ts), so a file never hands the native layer a shape it refuses with an untyped RangeError:
// at most 8 dimensions, each and their product at most 2^40 elements (native/napi/common.cpp to_shape's
// limits; a 120b expert tensor is 2^33).
import { CheckpointError } from '../errors.js';

export const MAX_TENSOR_ELEMENTS = 2 ** 40;
export const MAX_TENSOR_DIMS = 8;

/** Throws a CheckpointError naming `path` and tensor `name` unless `shape` is one the runtime can hold. */
export function checkShape(path: string, name: string, shape: readonly number[]): void {
  if (shape.length > MAX_TENSOR_DIMS)
    throw new CheckpointError(path, `shape ${JSON.stringify(shape)} has ${shape.length} dimensions (at most ${MAX_TENSOR_DIMS})`, name);
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new CheckpointError(path, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    if (d > MAX_TENSOR_ELEMENTS)
      throw new CheckpointError(path, `shape ${JSON.stringify(shape)}: dimension ${d} exceeds the runtime's ${MAX_TENSOR_ELEMENTS} elements`, name);
    n *= d;
  }
  if (n > MAX_TENSOR_ELEMENTS)
    throw new CheckpointError(path, `shape ${JSON.stringify(shape)} has ${n} elements, more than the runtime's ${MAX_TENSOR_ELEMENTS}`, name);
}
