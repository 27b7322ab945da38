// Errors a user can act on: each names the file and, where there is one, the tensor or field.
export class CheckpointError extends Error {
  readonly file: string;
  readonly tensor?: string;
  constructor(file: string, message: string, tensor?: string) {
    super(`${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ''}${message}`);
    this.name = 'CheckpointError';
    this.file = file;
    this.tensor = tensor;
  }
}

/**
 * A GPU backend that was asked for by name ('cuda', 'cuda:N', 'hip', 'hip:N') cannot run here:
 * `reason` is the native side's explanation (no build support, no runtime/driver, no device, no code
 * for the device). `device: 'auto'` never throws it: it falls back and reports the reasons instead.
 */
export class DeviceUnavailableError extends Error {
  readonly device: string;
  readonly backend: 'cuda' | 'hip';
  readonly reason: string;
  constructor(fn: string, device: string, backend: 'cuda' | 'hip', reason: string) {
    super(`${fn}: device '${device}' requested but ${backend === 'cuda' ? 'CUDA' : 'HIP'} is unavailable: ${reason}`);
    this.name = 'DeviceUnavailableError';
    this.device = device;
    this.backend = backend;
    this.reason = reason;
  }
}

export class ConfigError extends Error {
  readonly file: string;
  readonly field?: string;
  constructor(file: string, message: string, field?: string) {
    super(`${file}: ${field !== undefined ? `field '${field}': ` : ''}${message}`);
    this.name = 'ConfigError';
    this.file = file;
    this.field = field;
  }
}
