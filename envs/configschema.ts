/**
 * The safe subset of JSON Schema a level file's `config` fields may use.
 *
 * A level is data from anyone who can upload one, and its `config` becomes
 * part of the schema that every make() of the env validates against. Full
 * JSON Schema is too much to accept from strangers: `pattern`,
 * `patternProperties` and some `format`s run regular expressions, which can
 * take exponential time ("^(a+)+$" on 32 characters froze the server for
 * 23 s); `$ref` can point anywhere or nowhere; an unknown `type` makes the
 * compile fail later, on every listing. So each field is checked against an
 * allow-list before anything is compiled, and then compiled and its default
 * validated, all before the level is written or registered.
 *
 * Allowed in a field (and in nested `items` / `properties`, 4 levels deep):
 *   type (one of null, boolean, integer, number, string, array, object, or a
 *   list of them), enum (at most 256 values), const, default, title,
 *   description, examples, minimum, maximum, exclusiveMinimum,
 *   exclusiveMaximum, multipleOf (> 0), minLength, maxLength, minItems,
 *   maxItems, uniqueItems, items, properties, required, additionalProperties,
 *   minProperties, maxProperties.
 * Everything else (pattern, patternProperties, propertyNames, format, $ref,
 * $id, $defs, definitions, allOf, anyOf, oneOf, not, if/then/else,
 * dependencies, contains, ...) is refused with the keyword named.
 */
import { Ajv } from "ajv";

export const CONFIG_TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"] as const;
/** At most this many config fields per level. */
export const MAX_CONFIG_FIELDS = 32;
const MAX_DEPTH = 4;
const MAX_ENUM = 256;
const NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

const SCALAR_KEYWORDS = new Set([
  "type",
  "enum",
  "const",
  "default",
  "title",
  "description",
  "examples",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "uniqueItems",
  "items",
  "properties",
  "required",
  "additionalProperties",
  "minProperties",
  "maxProperties",
]);
const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];
const COUNT_KEYWORDS = ["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"];

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Problems of one schema node, with a path like `config.exposure.items`. */
function nodeProblems(node: unknown, path: string, depth: number, out: string[]): void {
  if (!isObject(node)) {
    out.push(`${path}: must be a JSON Schema object`);
    return;
  }
  if (depth > MAX_DEPTH) {
    out.push(`${path}: nested deeper than ${MAX_DEPTH} levels`);
    return;
  }
  for (const key of Object.keys(node)) {
    if (!SCALAR_KEYWORDS.has(key)) {
      out.push(`${path}: "${key}" is not in the safe subset of JSON Schema that level configs accept (see docs/security.md)`);
    }
  }
  const t = node.type;
  if (t !== undefined) {
    const types = Array.isArray(t) ? t : [t];
    if (types.length === 0 || !types.every((x) => typeof x === "string" && (CONFIG_TYPES as readonly string[]).includes(x))) {
      out.push(`${path}.type: must be one of ${CONFIG_TYPES.join(", ")} (or a list of them)`);
    }
  }
  if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0 || node.enum.length > MAX_ENUM)) {
    out.push(`${path}.enum: must be a list of 1 to ${MAX_ENUM} values`);
  }
  for (const k of NUMBER_KEYWORDS) {
    const v = node[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) out.push(`${path}.${k}: must be a finite number`);
  }
  if (node.multipleOf !== undefined && !((node.multipleOf as number) > 0)) out.push(`${path}.multipleOf: must be greater than 0`);
  for (const k of COUNT_KEYWORDS) {
    const v = node[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 1_000_000)) {
      out.push(`${path}.${k}: must be an integer from 0 to 1000000`);
    }
  }
  for (const k of ["title", "description"]) {
    if (node[k] !== undefined && typeof node[k] !== "string") out.push(`${path}.${k}: must be a string`);
  }
  if (node.uniqueItems !== undefined && typeof node.uniqueItems !== "boolean") out.push(`${path}.uniqueItems: must be a boolean`);
  if (node.items !== undefined) nodeProblems(node.items, `${path}.items`, depth + 1, out);
  if (node.properties !== undefined) {
    if (!isObject(node.properties)) out.push(`${path}.properties: must be an object of schemas`);
    else for (const [name, sub] of Object.entries(node.properties)) nodeProblems(sub, `${path}.properties.${name}`, depth + 1, out);
  }
  if (node.required !== undefined && !(Array.isArray(node.required) && node.required.every((r) => typeof r === "string"))) {
    out.push(`${path}.required: must be a list of property names`);
  }
  const ap = node.additionalProperties;
  if (ap !== undefined && typeof ap !== "boolean") nodeProblems(ap, `${path}.additionalProperties`, depth + 1, out);
}

// a private instance: a level's schema never lands in (or collides with) the project's shared ajv
const checker = new Ajv({ allErrors: true, strict: false, useDefaults: false, coerceTypes: false });

/**
 * Everything wrong with a level's `config` fields, as messages naming the
 * field and keyword; empty when the config is inside the safe subset,
 * compiles, and each field's default passes its own schema.
 */
export function configSchemaProblems(config: unknown): string[] {
  const out: string[] = [];
  if (config === undefined) return out;
  if (!isObject(config)) return ["config: must be an object of field schemas"];
  const fields = Object.entries(config);
  if (fields.length > MAX_CONFIG_FIELDS) out.push(`config: ${fields.length} fields, at most ${MAX_CONFIG_FIELDS}`);
  for (const [name, field] of fields) {
    const path = `config.${name}`;
    if (!NAME.test(name) || name in Object.prototype) {
      out.push(`${path}: field names are letters, digits and _ (at most 64, starting with a letter), and not "${name}"`);
      continue;
    }
    const before = out.length;
    nodeProblems(field, path, 1, out);
    if (out.length > before) continue;
    if (!("default" in (field as object))) {
      out.push(`${path}: needs a "default"`);
      continue;
    }
    const schema = structuredClone(field) as object;
    try {
      const validate = checker.compile(schema);
      if (!validate(structuredClone((field as { default: unknown }).default))) {
        out.push(`${path}.default: ${(validate.errors ?? []).map((e) => `${e.instancePath || ""} ${e.message}`.trim()).join("; ")}`);
      }
    } catch (e) {
      out.push(`${path}: does not compile: ${(e as Error).message}`);
    } finally {
      checker.removeSchema(schema);
    }
  }
  return out;
}
