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
