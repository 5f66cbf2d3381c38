/**
 * A form generated from a JSON Schema object (an agent's or env's config):
 * one field per property, defaults filled in, descriptions as hints, and a
 * place beside each field for the server's validation message.
 */
import { h, option, note } from "./dom.ts";

export interface PropertySchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  nullable?: boolean;
  anyOf?: PropertySchema[];
  oneOf?: PropertySchema[];
}

export interface ObjectSchema {
  type?: string;
  properties?: Record<string, PropertySchema>;
  required?: string[];
}

type Kind = "boolean" | "integer" | "number" | "string" | "enum" | "json";

interface FieldInfo {
  kind: Kind;
  nullable: boolean;
  choices: unknown[];
  schema: PropertySchema;
}

/** Reduces a property schema (type lists, anyOf with null, enums) to one input kind. */
export function describeProperty(schema: PropertySchema): FieldInfo {
  const alternatives = [schema, ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
  const types = new Set<string>();
  const choices: unknown[] = [];
  let hasEnum = false;
  for (const s of alternatives) {
    if (Array.isArray(s.type)) s.type.forEach((t) => types.add(t));
    else if (s.type) types.add(s.type);
    if (s.enum) {
      hasEnum = true;
      choices.push(...s.enum);
    }
    if ("const" in s) {
      hasEnum = true;
      choices.push(s.const);
    }
  }
  const nullable = types.has("null") || schema.nullable === true || choices.includes(null);
  types.delete("null");
  const values = choices.filter((c) => c !== null);
  let kind: Kind;
  if (hasEnum && values.length > 0) kind = "enum";
  else if (types.size === 1 && types.has("boolean")) kind = "boolean";
  else if (types.size === 1 && types.has("integer")) kind = "integer";
  else if ([...types].every((t) => t === "number" || t === "integer") && types.size > 0) kind = "number";
  else if (types.size === 1 && types.has("string")) kind = "string";
  else kind = "json";
  return { kind, nullable, choices: values, schema };
}

function rangeHint(s: PropertySchema, kind: Kind): string {
  const parts: string[] = [kind === "json" ? "json" : kind];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`);
  return parts.join(" ");
}

interface Field {
  key: string;
  info: FieldInfo;
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  error: HTMLElement;
  row: HTMLElement;
  initial: unknown;
}

export interface SchemaFormOptions {
  /** data-testid prefix: fields are `${prefix}-${key}`. */
  testidPrefix: string;
  /** JSON pointer prefix of these fields in the request body, e.g. "/config". */
  pathPrefix: string;
  /** Values to start from (defaults); falls back to each property's `default`. */
  values?: Record<string, unknown>;
  /** Properties not to show (e.g. "variant", chosen elsewhere). */
  exclude?: string[];
}

export class SchemaForm {
  readonly root: HTMLElement;
  private fields: Field[] = [];
  private readonly opts: SchemaFormOptions;

  constructor(schema: ObjectSchema, opts: SchemaFormOptions) {
    this.opts = opts;
    this.root = h("div", { class: "schema-form", "data-testid": `${opts.testidPrefix}-form` });
    const props = schema.properties ?? {};
    for (const [key, prop] of Object.entries(props)) {
      if (opts.exclude?.includes(key)) continue;
      const initial = opts.values && key in opts.values ? opts.values[key] : prop.default;
      this.fields.push(this.makeField(key, prop, initial));
    }
    if (this.fields.length === 0) this.root.appendChild(note("No settings."));
  }

  get empty(): boolean {
    return this.fields.length === 0;
  }

  private makeField(key: string, prop: PropertySchema, initial: unknown): Field {
    const info = describeProperty(prop);
    const id = `${this.opts.testidPrefix}-${key}`;
    const attrs = { id, "data-testid": id, name: key };
    let input: Field["input"];
    switch (info.kind) {
      case "boolean":
        input = h("input", { ...attrs, type: "checkbox" });
        break;
      case "enum": {
        const sel = h("select", attrs);
        if (info.nullable) sel.appendChild(option("", "null"));
        for (const c of info.choices) sel.appendChild(option(JSON.stringify(c), String(c)));
        input = sel;
        break;
      }
      case "integer":
      case "number":
        input = h("input", {
          ...attrs,
          type: "number",
          step: info.kind === "integer" ? 1 : "any",
          min: prop.minimum,
          max: prop.maximum,
          placeholder: info.nullable ? "null" : "",
        });
        break;
      case "string":
        input = h("input", { ...attrs, type: "text", placeholder: info.nullable ? "null" : "" });
        break;
      default:
        input = h("textarea", { ...attrs, rows: 2, spellcheck: "false" });
    }
    const error = h("div", { class: "field-error", "data-testid": `${id}-error`, role: "alert" });
    const label = h("label", { for: id }, prop.title ?? key, h("span", { class: "hint" }, rangeHint(prop, info.kind)));
    const row = h(
      "div",
      { class: `field field-${info.kind}`, "data-path": `${this.opts.pathPrefix}/${key}` },
      label,
      input,
      prop.description ? h("div", { class: "field-desc" }, prop.description) : null,
      error,
    );
    const field: Field = { key, info, input, error, row, initial };
    this.write(field, initial);
    input.addEventListener("input", () => this.markModified(field));
    input.addEventListener("change", () => this.markModified(field));
    this.root.appendChild(row);
    return field;
  }

  private write(f: Field, value: unknown): void {
    const { input, info } = f;
    if (info.kind === "boolean") (input as HTMLInputElement).checked = value === true;
    else if (info.kind === "enum") (input as HTMLSelectElement).value = value === null || value === undefined ? "" : JSON.stringify(value);
    else if (info.kind === "json") input.value = value === undefined ? "" : JSON.stringify(value);
    else input.value = value === null || value === undefined ? "" : String(value);
    this.markModified(f);
  }

  private read(f: Field): { value?: unknown; error?: string } {
    const { input, info } = f;
    const raw = input.value.trim();
    switch (info.kind) {
      case "boolean":
        return { value: (input as HTMLInputElement).checked };
      case "enum":
        return raw === "" ? (info.nullable ? { value: null } : {}) : { value: JSON.parse(raw) };
      case "integer":
      case "number": {
        if (raw === "") return info.nullable ? { value: null } : {};
        const n = Number(raw);
        if (!Number.isFinite(n)) return { error: "must be a number" };
        if (info.kind === "integer" && !Number.isInteger(n)) return { error: "must be an integer" };
        return { value: n };
      }
      case "string":
        return raw === "" && info.nullable ? { value: null } : { value: input.value };
      default:
        if (raw === "") return info.nullable ? { value: null } : {};
        try {
          return { value: JSON.parse(raw) };
        } catch {
          return { error: "must be valid JSON" };
        }
    }
  }

  private markModified(f: Field): void {
    const r = this.read(f);
    const same = r.error === undefined && JSON.stringify(r.value ?? null) === JSON.stringify(f.initial ?? null);
    f.row.classList.toggle("modified", !same);
  }

  /** Current values; fields left empty are omitted so the server fills their defaults. */
  collect(): { values: Record<string, unknown>; errors: { path: string; message: string }[] } {
    const values: Record<string, unknown> = {};
    const errors: { path: string; message: string }[] = [];
    for (const f of this.fields) {
      const r = this.read(f);
      if (r.error) errors.push({ path: `${this.opts.pathPrefix}/${f.key}`, message: r.error });
      else if ("value" in r && r.value !== undefined) values[f.key] = r.value;
    }
    return { values, errors };
  }

  /** Only the values that differ from the starting values. */
  changed(): Record<string, unknown> {
    const { values } = this.collect();
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      if (f.key in values && JSON.stringify(values[f.key]) !== JSON.stringify(f.initial ?? null)) out[f.key] = values[f.key];
    }
    return out;
  }

  /**
   * A field derived from another input (PPO's totalSteps: the run's env steps):
   * its starting value becomes `value`, shown unless the user changed the field,
   * and it is sent only if they did.
   */
  follow(key: string, value: unknown): void {
    const f = this.fields.find((x) => x.key === key);
    if (!f) return;
    const r = this.read(f);
    const untouched = r.error === undefined && JSON.stringify(r.value ?? null) === JSON.stringify(f.initial ?? null);
    f.initial = value;
    if (untouched) this.write(f, value);
    this.markModified(f);
  }

  reset(): void {
    for (const f of this.fields) this.write(f, f.initial);
    this.clearErrors();
  }

  clearErrors(): void {
    for (const f of this.fields) {
      f.error.textContent = "";
      f.row.classList.remove("invalid");
    }
  }

  /**
   * Shows each error beside its field (matching "/config/learningRate", or a
   * bare "/learningRate"); returns the errors that matched no field.
   */
  showErrors(details: { path: string; message: string }[]): { path: string; message: string }[] {
    const rest: { path: string; message: string }[] = [];
    for (const d of details) {
      const f = this.fieldFor(d.path);
      if (!f) {
        rest.push(d);
        continue;
      }
      f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${d.message}` : d.message;
      f.row.classList.add("invalid");
    }
    this.fields.find((f) => f.row.classList.contains("invalid"))?.input.focus();
    return rest;
  }

  private fieldFor(path: string): Field | undefined {
    const prefix = `${this.opts.pathPrefix}/`;
    const key = path.startsWith(prefix) ? path.slice(prefix.length).split("/")[0] : undefined;
    return this.fields.find((f) => f.key === key);
  }

  /** True if `path` names one of this form's fields. */
  owns(path: string): boolean {
    return this.fieldFor(path) !== undefined;
  }
}
