import type { TObject, TSchema } from '@sinclair/typebox';
import { LIMITS } from '../core/limits.ts';
import { STATUSES } from '../core/statuses.ts';
import { type CallerKind, COMPONENTS, ERROR, ROUTES, type RouteSpec } from './api.ts';
import { wire } from './api-schema.ts';

/**
 * docs/openapi.json, built from the declarations of api.ts and nothing else: `npm run openapi` writes it,
 * and a test fails when the committed file is not what this builds.
 *
 * @module
 */

/** The tokens a route takes; a route that takes any token takes none too, unless it may answer 401. */
const security = (spec: RouteSpec) =>
  spec.caller === 'anyToken' && !spec.errors?.includes(401)
    ? [{}, ...(SECURITY.anyToken ?? [])]
    : SECURITY[spec.caller];

const SECURITY: Record<CallerKind, Record<string, string[]>[] | undefined> = {
  anyone: undefined,
  anyToken: [{ operator: [] }, { merchant: [] }, { device: [] }],
  merchant: [{ merchant: [] }, { operator: [] }],
  merchantOnly: [{ merchant: [] }],
  device: [{ device: [] }],
  operator: [{ operator: [] }],
};

/** What each error answer means; its body is always the Error schema. */
const ERRORS: Record<number | 'Default', string> = {
  400: 'bad_request: the message says which field breaks which rule',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'idempotency_mismatch: the key was used with other fields',
  422: 'a business decline (insufficient_funds, payment_declined, limit_exceeded, ...)',
  429: 'rate_limited',
  503: 'overloaded: a report of this merchant is being read, or too many reports are being read at once; retry shortly',
  /** Any route, besides its own errors. */
  Default: `any other error: overloaded (503) or internal (500) while the server cannot serve, bad_request with 413 for a body over ${LIMITS.httpBodyBytesMax / 1024} KiB, 405 for a method the path does not take`,
};

const MERCHANT_ONLY =
  "Only the merchant's own API key: the operator token gets 403 (the operator does not act as a merchant).";

/** A schema as the document gives it: named schemas by reference, defaulted fields not required. */
const documented = (schema: TSchema, top = false): TSchema => wire(referenced(schema, top));

function referenced(schema: TSchema, top = false): TSchema {
  const name = COMPONENTS.get(schema);
  if (name !== undefined && !top) return { $ref: `#/components/schemas/${name}` } as unknown as TSchema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema))
    copy[key] = Array.isArray(value)
      ? value.map((item) => (typeof item === 'object' && item !== null ? referenced(item) : item))
      : typeof value === 'object' && value !== null
        ? referenced(value as TSchema)
        : value;
  return copy as TSchema;
}

function operation(spec: RouteSpec): Record<string, unknown> {
  const parameters: Record<string, unknown>[] = [];
  for (const [, name] of spec.path.matchAll(/:([A-Za-z]+)/g)) {
    const schema = (spec.params as TObject | undefined)?.properties[name as string] ?? { type: 'string' };
    parameters.push({ name, in: 'path', required: true, schema: documented(schema as TSchema) });
  }
  if (spec.query) {
    const required = new Set((documented(spec.query).required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries(spec.query.properties))
      parameters.push({ name, in: 'query', required: required.has(name), schema: documented(schema) });
  }
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(spec.answers))
    responses[status] = {
      description: answer.description,
      ...(answer.schema && {
        content: Object.fromEntries(
          Object.entries({
            [answer.contentType ?? 'application/json']: answer.schema,
            ...answer.alternatives,
          }).map(([type, schema]) => [type, { schema: documented(schema) }]),
        ),
      }),
    };
  const errors = new Set(spec.errors ?? []);
  if (spec.params || spec.query || spec.body) errors.add(400);
  if (!['anyone', 'anyToken'].includes(spec.caller)) errors.add(401);
  if (['merchant', 'merchantOnly', 'operator'].includes(spec.caller)) errors.add(403);
  if (['merchant', 'merchantOnly'].includes(spec.caller)) errors.add(404);
  for (const status of [...errors].sort()) responses[status] = { $ref: `#/components/responses/E${status}` };
  responses.default = { $ref: '#/components/responses/EDefault' };
  const description = [spec.description, spec.caller === 'merchantOnly' ? MERCHANT_ONLY : undefined]
    .filter(Boolean)
    .join(' ');
  return {
    summary: spec.summary,
    ...(description && { description }),
    ...(security(spec) && { security: security(spec) }),
    ...(parameters.length > 0 && { parameters }),
    ...(spec.body && {
      requestBody: {
        required: !spec.bodyOptional,
        content: { 'application/json': { schema: documented(spec.body) } },
      },
    }),
    responses,
  };
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of Object.values(ROUTES) as RouteSpec[]) {
    const path = spec.path.replace(/:([A-Za-z]+)/g, '{$1}');
    paths[path] = { ...paths[path], [spec.method]: operation(spec) };
  }
  const schemas = Object.fromEntries(
    [...COMPONENTS].map(([schema, name]) => [name, documented(schema, true)]),
  );
  const responses = Object.fromEntries(
    Object.entries(ERRORS).map(([status, description]) => [
      `E${status}`,
      { description, content: { 'application/json': { schema: documented(ERROR) } } },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'paycode HTTP API',
      version: '1.1',
      description: [
        'The HTTP part of the paycode wire contract, generated from the declarations the server checks requests with (gateway/api.ts).',
        `Errors are {"error":{"code":<status>,"message":<text>}}; the ${Object.keys(STATUSES).length} statuses are listed in docs/statuses.md.`,
        'Three formats say what no pattern can: phone (a number a phone can have, by libphonenumber-js metadata; the server keeps its canonical E.164 form), aba-routing (an assigned ABA prefix and a valid check digit) and date (a calendar date YYYY-MM-DD from the year 2000).',
      ].join(' '),
    },
    servers: [{ url: 'http://127.0.0.1:8080' }],
    components: {
      securitySchemes: {
        operator: {
          type: 'http',
          scheme: 'bearer',
          description: 'PAYCODE_ADMIN_TOKEN or the token printed at first start',
        },
        merchant: { type: 'http', scheme: 'bearer', description: "the merchant's API key" },
        device: { type: 'http', scheme: 'bearer', description: 'a device token from /v1/consumers/verify' },
      },
      schemas,
      responses,
    },
    paths,
  };
}
