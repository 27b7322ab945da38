// Errors in OpenAI's shape: {error: {message, type, param, code}} with the HTTP status beside it.
import { ContextLengthError, EngineClosedError, QueueFullError } from '../engine/errors.js';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A bad request naming the parameter (`messages[2].content`, `temperature`). */
export const badParam = (param: string, message: string, code: string | null = 'invalid_value'): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

/** JSON-schema validation errors (Fastify/Ajv) as one 400 naming the first bad parameter. */
export function validationError(validation: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]): ApiError {
  const v = validation[0] ?? {};
  // instancePath '/messages/0/content' -> messages[0].content
  let param = (v.instancePath ?? '')
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
  const missing = v.params?.missingProperty;
  if (typeof missing === 'string') param = param ? `${param}.${missing}` : missing;
  const allowed = Array.isArray(v.params?.allowedValues) ? ` (one of ${(v.params!.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')})` : '';
  const what = typeof missing === 'string' ? `'${param}' is required` : `'${param || 'body'}' ${v.message ?? 'is invalid'}${allowed}`;
  return new ApiError(400, `Invalid request: ${what}`, 'invalid_request_error', param || null, typeof missing === 'string' ? 'missing_required_parameter' : 'invalid_value');
}

/** Engine refusals and anything else as an ApiError. */
export function toApiError(e: unknown, param = 'messages'): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) return new ApiError(429, e.message, 'rate_limit_error', null, 'queue_full');
  if (e instanceof EngineClosedError) return new ApiError(503, e.message, 'service_unavailable', null, 'shutting_down');
  if (e instanceof ContextLengthError) return new ApiError(400, e.message, 'invalid_request_error', param, 'context_length_exceeded');
  if (e instanceof RangeError || e instanceof TypeError) return new ApiError(400, e.message, 'invalid_request_error', null, 'invalid_value');
  return new ApiError(500, e instanceof Error ? e.message : String(e), 'server_error', null, null);
}
