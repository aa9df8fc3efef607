import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { STATUSES, type Status } from '../core/statuses.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { InFlight } from './in-flight.ts';
import { isLoopbackAddress } from './loopback.ts';
import { plainAddress, type TrustedProxies } from './proxies.ts';

/**
 * A small layer over uWebSockets.js HTTP: each route gets its parameters, headers and JSON body copied
 * out of the request (uWS request objects die when the handler yields), the body is bounded, and the
 * answer is written corked, or dropped if the client went away. A handler that throws answers
 * `internal`; it never takes the process down. Every answer writes one access line to the app's logger:
 * method, route pattern and parameters (ids and dates), status, error code, duration and client address.
 * Headers and the query string are never logged: tokens travel in the Authorization header.
 *
 * @module
 */

export interface Request {
  params: string[];
  query: URLSearchParams;
  /** The bearer token, or '' when there is none. */
  token: string;
  /** The client's address: the peer's, or behind a trusted proxy the client's it names (proxies.ts). */
  remoteAddress: string;
  /** The address of the connection's other end (a proxy, when there is one). */
  peer: string;
  /** Whether the request came through a proxy: a trusted one, or forwarding headers from anyone. */
  forwarded: boolean;
  /** The Host header as sent ('' when absent). */
  host: string;
  /** The parsed JSON body; undefined for requests without one. */
  body: unknown;
}

export interface Answer {
  status: number;
  body: unknown;
  /** A body sent as is, with this content type, instead of JSON. */
  contentType?: string;
  /** More response headers. */
  headers?: Readonly<Record<string, string>>;
}

export type Handler = (request: Request) => Promise<Answer> | Answer;

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  422: 'Unprocessable Entity',
  423: 'Locked',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * Each app's logger. The server registers it once before adding routes, so the route table (routes.ts)
 * needs no logger of its own; an app without one logs to stderr.
 */
const appLoggers = new WeakMap<TemplatedApp, Logger>();
/** Each app's requests in flight, so a shutdown lets them finish (gateway/in-flight.ts). */
const appRequests = new WeakMap<TemplatedApp, InFlight>();

/** Each app's trusted proxies, and whether only they (and this machine) may send it requests. */
const appProxies = new WeakMap<TemplatedApp, ProxyPolicy>();

export interface ProxyPolicy {
  proxies: TrustedProxies;
  /**
   * Plain HTTP off loopback behind a TLS proxy: a request from anyone but a trusted proxy or this machine
   * would carry tokens in clear, so it is refused (`forbidden`) before it is read.
   */
  onlyThroughProxies: boolean;
}

export function serveBehind(app: TemplatedApp, policy: ProxyPolicy): void {
  appProxies.set(app, policy);
}

/** Where a request comes from, as every HTTP route and socket upgrade sees it. */
export function originOf(
  policy: ProxyPolicy | undefined,
  res: HttpResponse,
  req: HttpRequest,
): { remoteAddress: string; peer: string; forwarded: boolean; refused: boolean } {
  const peer = plainAddress(Buffer.from(res.getRemoteAddressAsText()).toString());
  const trusted = policy?.proxies.trusts(peer) ?? false;
  return {
    peer,
    // Only a trusted proxy's hops are read, every X-Forwarded-For line of them: getHeader gives the first,
    // which the client may have sent.
    remoteAddress: trusted ? (policy as ProxyPolicy).proxies.clientOf(peer, forwardedFor(req)) : peer,
    forwarded: trusted || req.getHeader('x-forwarded-for') !== '' || req.getHeader('forwarded') !== '',
    refused: (policy?.onlyThroughProxies ?? false) && !trusted && !isLoopbackAddress(peer),
  };
}

/** The answer to a request `originOf` refuses (routes, pages and socket upgrades alike). */
export const THROUGH_PROXY_ONLY: Answer = {
  status: 403,
  body: { error: { code: 'forbidden', message: 'this server takes requests through its TLS proxy only' } },
};

/** Whether `app` refuses this request: plain HTTP off loopback from neither a trusted proxy nor this machine. */
export function refusedBy(app: TemplatedApp, res: HttpResponse, req: HttpRequest): boolean {
  return originOf(appProxies.get(app), res, req).refused;
}

function forwardedFor(req: HttpRequest): string {
  const lines: string[] = [];
  req.forEach((name, value) => {
    if (name === 'x-forwarded-for') lines.push(value);
  });
  return lines.join(',');
}

export function logRequestsTo(app: TemplatedApp, logger: Logger): void {
  appLoggers.set(app, logger);
}

export function trackRequestsIn(app: TemplatedApp, inFlight: InFlight): void {
  appRequests.set(app, inFlight);
}

export function ok(status: number, body: unknown): Answer {
  return { status, body };
}

export function fail(status: Status, message: string): Answer {
  return { status: STATUSES[status].http, body: { error: { code: status, message } } };
}

export function route(
  app: TemplatedApp,
  method: 'get' | 'post' | 'del',
  pattern: string,
  body: { bytesMax: number; drainBytesMax: number },
  handler: Handler,
  /** Told each answer's route, HTTP status and time from the request to the answer, in seconds. */
  onAnswer: (pattern: string, status: number, seconds: number) => void,
): void {
  const paramCount = pattern.split('/').filter((part) => part.startsWith(':')).length;
  const logger = appLoggers.get(app) ?? createLogger();
  const inFlight = appRequests.get(app);
  const methodName = method === 'del' ? 'DELETE' : method.toUpperCase();
  app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
    const startedAtMs = performance.now();
    let done = false;
    res.onAborted(() => {
      done = true;
    });
    const authorization = req.getHeader('authorization');
    const { refused, ...from } = originOf(appProxies.get(app), res, req);
    const request: Request = {
      params: Array.from({ length: paramCount }, (_, i) => decodeParameter(req.getParameter(i))),
      query: new URLSearchParams(req.getQuery() ?? ''),
      token: authorization.startsWith('Bearer ') ? authorization.slice(7).trim() : '',
      ...from,
      host: req.getHeader('host'),
      body: undefined,
    };
    const respond = (answer: Answer, closeConnection = false) => {
      if (done) return;
      done = true;
      const durationMs = performance.now() - startedAtMs;
      onAnswer(pattern, answer.status, durationMs / 1000);
      logger.info('http request', {
        method: methodName,
        route: pattern,
        params: request.params,
        status: answer.status,
        error: answer.status >= 400 ? errorCodeOf(answer.body) : undefined,
        durationMs: Math.round(durationMs * 10) / 10,
        remoteAddress: request.remoteAddress,
      });
      const text =
        answer.contentType === undefined ? JSON.stringify(answer.body) : (answer.body as string | Buffer);
      res.cork(() => {
        res
          .writeStatus(`${answer.status} ${REASONS[answer.status] ?? ''}`)
          .writeHeader('content-type', answer.contentType ?? 'application/json')
          .writeHeader('cache-control', 'no-store');
        for (const [name, value] of Object.entries(answer.headers ?? {})) res.writeHeader(name, value);
        res.end(text, closeConnection);
      });
    };
    const run = async () => {
      if (refused) {
        respond(THROUGH_PROXY_ONLY, true);
        return;
      }
      if (inFlight?.draining) {
        respond(fail('overloaded', 'the server is shutting down; retry shortly'), true);
        return;
      }
      try {
        const answer = handler(request);
        respond(await (inFlight && answer instanceof Promise ? inFlight.track(answer) : answer));
      } catch (error) {
        logger.error('http handler failed', { method: methodName, route: pattern, err: error });
        respond(fail('internal', 'internal error; retry with the same idempotency key'));
      }
    };
    if (method !== 'post' || refused) {
      void run();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge: Answer = {
      status: 413,
      body: { error: { code: 'bad_request', message: `the body is larger than ${body.bytesMax} bytes` } },
    };
    // A body said to be too large is refused before it is read; it is still drained (see limits.ts).
    const declared = Number(req.getHeader('content-length') || 0);
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > body.bytesMax || declared > body.bytesMax) {
        chunks.length = 0;
        if (size > body.drainBytesMax || declared > body.drainBytesMax) respond(tooLarge, true);
        else if (isLast) respond(tooLarge);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      try {
        // No body at all is no body (routes that take none); anything else must be JSON.
        request.body = size === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        respond(fail('bad_request', 'the body is not valid JSON'));
        return;
      }
      void run();
    });
  });
}

/** The stable error code of an error answer (`{error:{code}}`), for the access line. */
function errorCodeOf(body: unknown): unknown {
  const error = (body as { error?: { code?: unknown } } | null)?.error;
  return typeof error?.code === 'string' ? error.code : undefined;
}

function decodeParameter(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
