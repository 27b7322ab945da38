// The HTTP layer (Fastify): routes, body validation (JSON schema), OpenAI-shaped errors, SSE
// framing, client disconnects and graceful shutdown. The serving modules (chat-completions.ts,
// responses.ts) know nothing of HTTP, and the engine knows nothing of either.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyError } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Engine } from '../engine/scheduler.js';
import { ApiError, toApiError, validationError } from './errors.js';
import { chatCompletionSchema, completionSchema, responsesSchema, type ChatCompletionRequest, type CompletionRequest, type ResponsesRequest } from './protocol.js';
import { completion, completionChunks, startCompletion } from './completions.js';
import { chatCompletion, chatCompletionChunks, startChat } from './chat-completions.js';
import { ServerMetrics } from './metrics.js';
import { ResponseStore } from './response-store.js';
import { detokenize, detokenizeSchema, tokenize, tokenizeSchema, type DetokenizeRequest, type TokenizeRequest } from './tokenize.js';
import { responseEvents, responseJson, startResponse } from './responses.js';
import type { ServeContext } from './serving.js';
import { warmMaskWorker } from '../grammar/token-mask.js';
import { tokenizer } from '../tokenizer.js';

export interface ServerOptions {
  /** The model id clients send (default 'gpt-oss'). */
  modelName?: string;
  /** Largest request body in bytes (default 8 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Fastify's logger option (default false). */
  logger?: boolean | Record<string, unknown>;
  /**
   * When set, every request but /health and /metrics must carry `Authorization: Bearer <apiKey>` (the openai client's
   * `apiKey`); others get 401 `invalid_api_key`. /health and /metrics stay open (probes and scrapers).
   */
  apiKey?: string;
  /** Responses kept for previous_response_id and GET /v1/responses/{id}, the most recent first (default 1000; 0: none). */
  storedResponses?: number;
  /**
   * Browser origins allowed to call the API (CORS): exact origins ('http://localhost:5173') or '*' for any. Default
   * none: no CORS headers, so a web page on another origin cannot read the answers. Preflights (OPTIONS) are answered
   * before the API key is checked, as browsers send them without it.
   */
  corsOrigins?: string[];
}

export interface OpenAIServer {
  app: FastifyInstance;
  context: ServeContext;
  /** Listens; resolves to the address (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /**
   * Graceful shutdown: refuses new requests (503), lets those in flight finish for up to
   * `deadlineMs`, cancels the rest (their streams end, their KV blocks are freed), closes the port.
   */
  close(deadlineMs?: number): Promise<void>;
}

const sendError = (reply: FastifyReply, e: ApiError): FastifyReply => {
  if (e.status === 429) void reply.header('retry-after', '1');
  return reply.code(e.status).send(e.body());
};

/** A controller that aborts when the client goes away before the response is complete. */
function disconnectSignal(res: ServerResponse): AbortController {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller;
}

async function writeSse(res: ServerResponse, frame: string): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  if (!res.write(frame)) await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** What answers without the API key: the probes and the scrape (everything else, /tokenize too, needs it). */
const OPEN_PATHS = new Set(['/health', '/metrics']);

/** Streams frames as SSE (each frame a whole `data:` / `event:` block) and ends the response, even on a failure. */
async function sendSse(reply: FastifyReply, frames: AsyncIterable<string>): Promise<void> {
  const res = openSse(reply);
  try {
    for await (const frame of frames) await writeSse(res, frame);
  } finally {
    res.end();
  }
}

/** OpenAI's chat and completion chunk streams: `data: <json>` a chunk, then `data: [DONE]`. */
async function* dataFrames(chunks: AsyncIterable<Record<string, unknown>>): AsyncGenerator<string> {
  for await (const chunk of chunks) yield `data: ${JSON.stringify(chunk)}\n\n`;
  yield 'data: [DONE]\n\n';
}

/** The Responses API's typed stream: `event: <type>` and `data: <json>` an event (no [DONE]). */
async function* eventFrames(events: AsyncIterable<Record<string, unknown>>): AsyncGenerator<string> {
  for await (const e of events) yield `event: ${e.type as string}\ndata: ${JSON.stringify(e)}\n\n`;
}

function openSse(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  // headers set on the reply before it was hijacked (CORS) go out with the stream's
  const set = Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined) as [string, string | string[] | number][];
  res.writeHead(200, { ...Object.fromEntries(set), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  return res;
}

export function createServer(engine: Engine, options: ServerOptions = {}): OpenAIServer {
  // the options' checks first: a bad one throws before anything is built
  if (options.apiKey !== undefined && options.apiKey === '') throw new TypeError('createServer: apiKey must not be empty (leave it out to serve without one)');
  const expected = options.apiKey === undefined ? null : Buffer.from(`Bearer ${options.apiKey}`);
  const cors = options.corsOrigins ?? [];
  for (const o of cors)
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) throw new TypeError(`createServer: corsOrigins entries are '*' or an origin like 'http://localhost:5173' (scheme and host, no path), got '${o}'`);
  const context: ServeContext = {
    engine,
    modelName: options.modelName ?? 'gpt-oss',
    created: Math.floor(Date.now() / 1000),
    metrics: new ServerMetrics(),
    responses: new ResponseStore(options.storedResponses ?? 1000),
  };
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
    return503OnClosing: true,
    // no type coercion ("1" is not 1) and no silent removal: a bad field is a 400 naming it
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: false } },
  });
  let draining = false;

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation) return sendError(reply, validationError(error.validation as never));
    if (error instanceof ApiError) return sendError(reply, error);
    const status = error.statusCode;
    if (status === 413) return sendError(reply, new ApiError(413, `Request body too large: the limit is ${app.initialConfig.bodyLimit} bytes`, 'invalid_request_error', null, 'request_too_large'));
    if (status === 415) return sendError(reply, new ApiError(415, `Unsupported content type: send application/json (${error.message})`, 'invalid_request_error', null, 'unsupported_media_type'));
    if (status === 400) return sendError(reply, new ApiError(400, `We could not parse the JSON body of your request: ${error.message}`, 'invalid_request_error', null, 'invalid_json'));
    return sendError(reply, toApiError(error));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new ApiError(404, `Unknown request URL: ${request.method} ${request.url}`, 'invalid_request_error', null, 'unknown_url')),
  );
  app.addHook('onRequest', async (request, reply) => {
    // every response counted once it is sent, streamed (hijacked) ones included: by route pattern, not URL
    reply.raw.once('finish', () => context.metrics.http(request.routeOptions.url ?? 'unmatched', reply.raw.statusCode));
    const origin = request.headers.origin;
    if (origin !== undefined && (cors.includes('*') || cors.includes(origin))) {
      void reply.header('access-control-allow-origin', cors.includes('*') ? '*' : origin);
      if (!cors.includes('*')) void reply.header('vary', 'Origin');
      if (request.method === 'OPTIONS') {
        void reply.header('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
        void reply.header('access-control-allow-headers', request.headers['access-control-request-headers'] ?? 'authorization, content-type');
        void reply.header('access-control-max-age', '600');
        return reply.code(204).send();
      }
    }
    if (draining && request.url !== '/health' && request.url !== '/metrics')
      return sendError(reply, new ApiError(503, 'The server is shutting down', 'service_unavailable', null, 'shutting_down'));
    if (expected && !OPEN_PATHS.has(request.url.split('?')[0])) {
      const got = Buffer.from(request.headers.authorization ?? '');
      // compared in constant time: the key's bytes leak nothing through the answer's timing
      if (got.length !== expected.length || !timingSafeEqual(got, expected))
        return sendError(
          reply,
          new ApiError(401, request.headers.authorization ? 'Incorrect API key provided' : "Missing API key: send 'Authorization: Bearer <key>'", 'invalid_request_error', null, 'invalid_api_key'),
        );
    }
  });

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(context.metrics.render(context.modelName, engine.stats())),
  );
  app.get('/health', async (_request, reply) => {
    const s = engine.stats();
    return reply.code(draining ? 503 : 200).send({ status: draining ? 'shutting_down' : 'ok', model: context.modelName, ...s });
  });

  const modelObject = { id: context.modelName, object: 'model', created: context.created, owned_by: 'gpt-oss-node', max_model_len: engine.maxContext };
  app.get('/v1/models', async () => ({ object: 'list', data: [modelObject] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request, reply) => {
    if (request.params.id !== context.modelName)
      return sendError(reply, new ApiError(404, `The model '${request.params.id}' does not exist`, 'invalid_request_error', 'model', 'model_not_found'));
    return modelObject;
  });

  app.post<{ Body: ChatCompletionRequest }>('/v1/chat/completions', { schema: { body: chatCompletionSchema } }, async (request: FastifyRequest<{ Body: ChatCompletionRequest }>, reply) => {
    const controller = disconnectSignal(reply.raw);
    const turn = await startChat(context, request.body, controller.signal); // refusals throw before any byte is sent
    if (!request.body.stream) return reply.send(await chatCompletion(turn));
    await sendSse(reply, dataFrames(chatCompletionChunks(turn)));
  });

  app.post<{ Body: CompletionRequest }>('/v1/completions', { schema: { body: completionSchema } }, async (request: FastifyRequest<{ Body: CompletionRequest }>, reply) => {
    const controller = disconnectSignal(reply.raw);
    const turn = await startCompletion(context, request.body, controller.signal);
    if (!request.body.stream) return reply.send(await completion(turn));
    await sendSse(reply, dataFrames(completionChunks(turn)));
  });

  app.post<{ Body: TokenizeRequest }>('/tokenize', { schema: { body: tokenizeSchema } }, async (request) => tokenize(context, request.body));
  app.post<{ Body: DetokenizeRequest }>('/detokenize', { schema: { body: detokenizeSchema } }, async (request) => detokenize(context, request.body));

  app.post<{ Body: ResponsesRequest }>('/v1/responses', { schema: { body: responsesSchema } }, async (request: FastifyRequest<{ Body: ResponsesRequest }>, reply) => {
    const controller = disconnectSignal(reply.raw);
    const turn = await startResponse(context, request.body, controller.signal);
    if (!request.body.stream) return reply.send(await responseJson(turn));
    await sendSse(reply, eventFrames(responseEvents(turn)));
  });

  const notFound = (id: string): ApiError =>
    new ApiError(404, `Response with id '${id}' not found (this server keeps the last ${context.responses.capacity} stored responses, in memory)`, 'invalid_request_error', 'response_id', 'not_found');
  app.get<{ Params: { id: string } }>('/v1/responses/:id', async (request, reply) => {
    const stored = context.responses.get(request.params.id);
    return stored ? stored.response : sendError(reply, notFound(request.params.id));
  });
  app.delete<{ Params: { id: string } }>('/v1/responses/:id', async (request, reply) =>
    context.responses.delete(request.params.id) ? { id: request.params.id, object: 'response', deleted: true } : sendError(reply, notFound(request.params.id)),
  );

  return {
    app,
    context,
    async listen(port, host = '127.0.0.1') {
      if (engine.model.config.vocabSize === tokenizer.vocabSize) warmMaskWorker(); // structured outputs: the mask worker builds its index before any request waits on it
      await app.listen({ port, host });
      const addr = app.server.address();
      const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
      return { host, port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` };
    },
    async close(deadlineMs = 10_000) {
      draining = true;
      await engine.close(deadlineMs); // in-flight turns finish or are cancelled by the deadline
      await app.close();
    },
  };
}
