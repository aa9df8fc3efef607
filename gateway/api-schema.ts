import { type SchemaOptions, type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN } from '../core/codes.ts';
import { LIMITS } from '../core/limits.ts';
import { canonicalPhone, E164_SHAPE } from '../core/phone.ts';
import { IDEMPOTENCY_KEY_SHAPE } from '../engine/engine.ts';
import { isRoutingNumber } from '../settlement/bank.ts';
import { parseDate } from '../settlement/calendar.ts';

/**
 * The fields of the HTTP API as JSON Schema, each rule in one place: the server checks request bodies and
 * query strings with these schemas (ajv), and docs/openapi.json is generated from the same schemas
 * (openapi.ts), so the document and the server give every request the same verdict.
 *
 * A field's `description` says what it must be; a request that breaks it is answered `bad_request` with
 * "<field> must be <description>". Three rules no pattern can say are formats, named in the document:
 * `phone` (a number a phone can have, libphonenumber's metadata), `aba-routing` (an assigned ABA prefix and
 * its check digit) and `date` (a calendar date YYYY-MM-DD of this millennium).
 *
 * A field with a `default` is optional on the wire and filled in before the handler sees it: `wire()`
 * takes it out of `required`, in the checked schema and the document alike.
 *
 * @module
 */

export const FORMATS = {
  phone: (value: string) => canonicalPhone(value) !== null,
  'aba-routing': (value: string) => isRoutingNumber(value),
  date: (value: string) => parseDate(value) !== null,
} as const;

/**
 * A name or label: not blank, no control characters and no `|` (a field separator in statements and
 * logs). The lookahead keeps the match linear in the length.
 */
export const text = (maxLength: number, description: string) =>
  Type.String({ minLength: 1, maxLength, pattern: '^(?!\\s*$)[^\\u0000-\\u001f|]+$', description });

export const phone = () =>
  Type.String({
    pattern: E164_SHAPE.source,
    format: 'phone',
    description: 'an E.164 number like +15555550123, of a phone that can exist',
  });

export const cents = (description = 'a positive integer of cents') =>
  Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description });

export const epochMs = (description = 'an epoch time in milliseconds') =>
  Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description });

export const idempotencyKey = () =>
  Type.String({
    pattern: IDEMPOTENCY_KEY_SHAPE.source,
    description: `1-${LIMITS.idempotencyKeyLengthMax} characters of A-Z a-z 0-9 _ -; a retry with the same key gets the stored answer`,
  });

export const otp = (description = 'the 6 digits of the text') =>
  Type.String({ pattern: '^[0-9]{6}$', description });

export const date = (description = 'a date YYYY-MM-DD') =>
  Type.String({ pattern: '^2[0-9]{3}-[0-9]{2}-[0-9]{2}$', format: 'date', description });

export const codeDigits = (options: SchemaOptions = {}) =>
  Type.Integer({
    ...options,
    minimum: CODE_DIGITS_MIN,
    maximum: CODE_DIGITS_MAX,
    description: `an integer from ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX}: the shortest payment code the merchant's consumers get`,
  });

export const id = (description: string) => Type.String({ description });

export const flag = (description: string) => Type.Boolean({ description });

export const stringEnum = <const T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });

export const nullable = <T extends TSchema>(schema: T, options: SchemaOptions = {}) =>
  Type.Union([schema, Type.Null()], options);

export const int = (minimum: number, maximum: number, options: SchemaOptions = {}) =>
  Type.Integer({ minimum, maximum, description: `an integer from ${minimum} to ${maximum}`, ...options });

/** The schema as the wire sees it: a property with a default is not required. */
export function wire(schema: TSchema): TSchema {
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema))
    copy[key] = Array.isArray(value)
      ? value.map((item) => (typeof item === 'object' ? wire(item) : item))
      : typeof value === 'object' && value !== null
        ? wire(value as TSchema)
        : value;
  const properties = schema.properties as Record<string, TSchema> | undefined;
  if (properties && Array.isArray(copy.required)) {
    copy.required = (copy.required as string[]).filter((name) => properties[name]?.default === undefined);
    if ((copy.required as string[]).length === 0) delete copy.required;
  }
  return copy as TSchema;
}

const ajv = new Ajv2020({ strict: true, verbose: true, useDefaults: true, allErrors: false });
for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, { type: 'string', validate });

/** Each schema compiled once, however many servers a process starts. */
const compiled = new WeakMap<TSchema, ValidateFunction>();

/** Checks a value against a schema: the value with its defaults, or why not, in words for the caller. */
export type Check<T> = (value: unknown) => { ok: true; value: T } | { ok: false; message: string };

/**
 * A check of an object (a body, a query string): defaults filled in, and the first broken rule as
 * "<field> must be <description>".
 */
export function objectCheck<S extends TObject>(schema: S, what: string): Check<Static<S>> {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(wire(schema));
    compiled.set(schema, validate);
  }
  const checked = validate;
  return (value) => {
    if (checked(value)) return { ok: true, value: value as Static<S> };
    return { ok: false, message: messageOf(schema, checked.errors?.[0], what) };
  };
}

function messageOf(schema: TObject, error: ErrorObject | undefined, what: string): string {
  if (!error) return `${what} is not valid`;
  const field =
    error.keyword === 'required'
      ? (error.params as { missingProperty: string }).missingProperty
      : error.instancePath.split('/')[1];
  const description = field === undefined ? undefined : descriptionOf(schema.properties[field]);
  if (description) return `${field} must be ${description}`;
  const rule = (error.parentSchema as { description?: string } | undefined)?.description;
  if (rule) return rule;
  return field === undefined
    ? `${what} must be a JSON object`
    : `${field} ${error.message ?? 'is not valid'}`;
}

/** What a field must be: its description, or that of the first of its alternatives that has one. */
const descriptionOf = (schema: TSchema | undefined): string | undefined =>
  schema?.description ??
  (schema?.anyOf as TSchema[] | undefined)?.find((branch) => branch.description)?.description;
