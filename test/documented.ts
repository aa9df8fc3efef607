// The committed docs/openapi.json as a client would read it: a fresh ajv over the file itself (not the
// server's declarations), with the three formats the document names. `verdict` says whether the document
// takes a request; `answerProblem` whether an answer is one the document describes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { FORMATS } from '../gateway/api-schema.ts';

// biome-ignore lint/suspicious/noExplicitAny: a parsed JSON document
type Json = any;

export const DOCUMENT: Json = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'docs', 'openapi.json'), 'utf8'),
);

const ajv = new Ajv2020({ strict: false, allErrors: true });
for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, { type: 'string', validate });
/** References into the document's components, made absolute so a schema compiles on its own. */
const rebased = (value: Json): Json =>
  JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', '"openapi#/$defs/'));
ajv.addSchema({ $id: 'openapi', $defs: rebased(DOCUMENT.components.schemas) });
const compiled = new Map<Json, ValidateFunction>();
const compile = (schema: Json): ValidateFunction => {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(rebased(schema));
    compiled.set(schema, validate);
  }
  return validate;
};

/** The documented operation of a request, with its path parameters; undefined if none. */
export function operationOf(
  method: string,
  url: string,
): { operation: Json; params: Record<string, string> } | undefined {
  const path = url.split('?')[0] as string;
  for (const [template, methods] of Object.entries(DOCUMENT.paths as Record<string, Json>)) {
    const names: string[] = [];
    const pattern = template.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    const match = new RegExp(`^${pattern}$`).exec(path);
    const operation = methods[method.toLowerCase()];
    if (!match || !operation) continue;
    return {
      operation,
      params: Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1] as string)])),
    };
  }
  return undefined;
}

/** Whether the document takes the request: path parameters, query and JSON body (undefined: none sent). */
export function verdict(method: string, url: string, body: unknown): 'valid' | 'invalid' | 'undocumented' {
  const found = operationOf(method, url);
  if (!found) return 'undocumented';
  const { operation, params } = found;
  const query = new URLSearchParams(url.split('?')[1] ?? '');
  for (const parameter of operation.parameters ?? []) {
    const text = parameter.in === 'path' ? params[parameter.name] : query.get(parameter.name);
    if (text === null || text === undefined) {
      if (parameter.required) return 'invalid';
      continue;
    }
    // A query string is text; an integer parameter is written in plain decimal digits.
    const value = parameter.schema.type === 'integer' && /^[0-9]{1,16}$/.test(text) ? Number(text) : text;
    if (!compile(parameter.schema)(value)) return 'invalid';
  }
  const requestBody = operation.requestBody;
  if (requestBody) {
    if (body === undefined) return requestBody.required ? 'invalid' : 'valid';
    if (!compile(requestBody.content['application/json'].schema)(body)) return 'invalid';
  }
  return 'valid';
}

const ANY_ROUTE_STATUSES = [405, 413, 500, 503];

/** Why an answer is not what the document says of its operation and status; null when it is. */
export function answerProblem(method: string, url: string, status: number, body: unknown): string | null {
  const found = operationOf(method, url);
  if (!found) return null;
  // Any route may answer the statuses of the `default` answer besides its own (gateway/openapi.ts).
  let response =
    found.operation.responses[String(status)] ??
    (ANY_ROUTE_STATUSES.includes(status) ? found.operation.responses.default : undefined);
  if (!response) return `${method} ${url}: status ${status} is not documented`;
  if (response.$ref) response = DOCUMENT.components.responses[response.$ref.split('/').pop()];
  const schema = response.content?.['application/json']?.schema;
  if (!schema || typeof body === 'string') return null;
  const validate = compile(schema);
  if (validate(body)) return null;
  return `${method} ${url} answered ${status} ${JSON.stringify(body).slice(0, 300)}: ${ajv.errorsText(validate.errors)}`;
}
