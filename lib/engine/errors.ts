// Errors the engine throws when it refuses a request; each carries a code the server maps to a status.

/** The waiting queue is full (the server answers 429). */
export class QueueFullError extends Error {
  readonly code = 'queue_full';
  constructor(readonly waiting: number) {
    super(`the engine's queue is full (${waiting} requests waiting); retry later`);
    this.name = 'QueueFullError';
  }
}

/** The engine is shutting down or was closed (the server answers 503). */
export class EngineClosedError extends Error {
  readonly code = 'engine_closed';
  constructor() {
    super('the engine is shutting down and takes no new requests');
    this.name = 'EngineClosedError';
  }
}

/** A prompt (plus the tokens asked for) that can never fit one sequence's context. */
export class ContextLengthError extends RangeError {
  readonly code = 'context_length_exceeded';
  constructor(
    readonly promptTokens: number,
    readonly maxTokens: number,
    readonly limit: number,
  ) {
    super(
      `this model's maximum context length is ${limit} tokens; the prompt has ${promptTokens} tokens and ${maxTokens} more were requested ` +
        `(${promptTokens + maxTokens} in all): shorten the prompt or lower max_tokens`,
    );
    this.name = 'ContextLengthError';
  }
}
