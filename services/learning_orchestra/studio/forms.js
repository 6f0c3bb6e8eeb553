// The re-run form, generated from the step type's PATCH request schema in the server's own
// /openapi.json: one labelled control per body key, prefilled with the step's parameters,
// and submitted as a JSON merge-patch of what changed (docs/api.md: PATCH merges objects
// key by key and `null` removes a key), so an untouched form re-runs the step as it was.

import { html, useEffect, useMemo, useState } from "./ui.js";
import { openapi, send, stepPath, BASE } from "./api.js";

let documentPromise = null;

/** The OpenAPI document, fetched once per page. */
export function openapiDocument() {
  documentPromise ||= openapi();
  return documentPromise;
}

/** Follow `$ref`s (local ones: `#/components/...`) and merge `allOf`. */
export function resolve(schema, root, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > 20) return schema || {};
  if (schema.$ref && schema.$ref.startsWith("#/")) {
    const target = schema.$ref
      .slice(2)
      .split("/")
      .reduce((node, key) => node?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], root);
    const { $ref, ...rest } = schema;
    return resolve({ ...target, ...rest }, root, depth + 1);
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    return allOf.reduce((merged, part) => {
      const resolved = resolve(part, root, depth + 1);
      return { ...merged, ...resolved, properties: { ...merged.properties, ...resolved.properties } };
    }, rest);
  }
  return schema;
}

/** The PATCH body schema of `type` ("dataset/csv"), resolved; undefined when the document
 * has no such route (the type cannot be re-run), null when there is no document. */
export function patchSchema(doc, type) {
  if (!doc) return null;
  const operation = doc.paths?.[`/api/learningOrchestra/v1/${type}/{name}`]?.patch;
  if (!operation) return undefined;
  const schema = operation.requestBody?.content?.["application/json"]?.schema;
  return schema ? resolve(schema, doc) : undefined;
}

/** Keys that name the step itself: never part of a re-run. */
const NAME_KEYS = new Set(["name", "datasetName", "modelName", "outputDatasetName"]);
/** String fields that hold code (or other multi-line text). */
const LONG_TEXT = 2000;

/** How a property is edited: {kind, nullable, options?, schema}. */
export function fieldOf(key, schema, root, value) {
  let inner = resolve(schema, root);
  let nullable = false;
  const variants = inner.anyOf || inner.oneOf;
  if (Array.isArray(variants)) {
    const concrete = variants.map((v) => resolve(v, root)).filter((v) => v.type !== "null");
    nullable = concrete.length < variants.length;
    if (concrete.length === 1) inner = { ...concrete[0], description: inner.description ?? concrete[0].description };
    else inner = { ...inner, type: undefined };
  }
  const description = inner.description || schema.description || "";
  const base = { key, nullable, description, title: inner.title };
  if (Array.isArray(inner.enum)) return { ...base, kind: "enum", options: inner.enum };
  const items = inner.items ? resolve(inner.items, root) : null;
  if (inner.type === "array" && Array.isArray(items?.enum)) return { ...base, kind: "multienum", options: items.enum };
  if (inner.type === "boolean") return { ...base, kind: "boolean" };
  if (inner.type === "integer" || inner.type === "number") return { ...base, kind: "number", integer: inner.type === "integer" };
  if (inner.type === "string") {
    const long = (inner.maxLength ?? Infinity) > LONG_TEXT && (key === "function" || /code/i.test(key) || String(value ?? "").includes("\n"));
    return { ...base, kind: long ? "code" : "text" };
  }
  return { ...base, kind: "json" }; // objects, arrays, anything else
}

/** The fields of a step's re-run form: from the schema, else (no OpenAPI document, e.g.
 * behind a gateway that does not route it) from the step's own parameters, as JSON. */
export function formFields(step, schema, root) {
  if (schema?.properties) {
    return Object.entries(schema.properties)
      .filter(([key]) => !NAME_KEYS.has(key))
      .map(([key, property]) => fieldOf(key, property, root, step.parameters?.[key]));
  }
  return Object.keys(step.parameters || {})
    .filter((key) => !NAME_KEYS.has(key))
    .map((key) => ({ key, kind: typeof step.parameters[key] === "string" ? "text" : "json", nullable: true, description: "" }));
}

/** A control's initial value from the step's parameter. */
function initial(field, value) {
  switch (field.kind) {
    case "boolean":
      return Boolean(value);
    case "multienum":
      return Array.isArray(value) ? value.map(String) : [];
    case "json":
      return value === undefined ? "" : JSON.stringify(value, null, 2);
    default:
      return value === undefined || value === null ? "" : String(value);
  }
}

/** A control's value as JSON: {value} or {error} (a message for the field). */
function parse(field, text, before) {
  switch (field.kind) {
    case "boolean":
      return { value: !text && before === undefined ? undefined : text };
    case "multienum":
      return { value: !text.length && before === undefined ? undefined : text };
    case "number": {
      if (text.trim() === "") return { value: before === undefined ? undefined : null };
      const number = Number(text);
      if (!Number.isFinite(number)) return { error: "Enter a number." };
      if (field.integer && !Number.isInteger(number)) return { error: "Enter a whole number." };
      return { value: number };
    }
    case "json": {
      if (text.trim() === "") return { value: before === undefined ? undefined : null };
      try {
        return { value: JSON.parse(text) };
      } catch (error) {
        return { error: `Not valid JSON: ${error.message}` };
      }
    }
    case "enum": {
      const option = field.options.find((o) => String(o) === text);
      return { value: text === "" ? (before === undefined ? undefined : null) : option ?? text };
    }
    default:
      if (text === "" && (before === undefined || before === null)) return { value: before };
      return { value: text === "" && field.nullable ? null : text };
  }
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

export function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** RFC 7386: the merge-patch that turns `before` into `after` (removed keys as null). */
export function mergePatch(before, after) {
  if (!isObject(before) || !isObject(after)) return after;
  const patch = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (!equal(before[key], value)) patch[key] = mergePatch(before[key], value);
  }
  return patch;
}

/** The PATCH body: for each field whose value changed, its merge-patch. */
export function patchBody(fields, parameters, values) {
  const body = {};
  const errors = {};
  for (const field of fields) {
    const before = parameters?.[field.key];
    const parsed = parse(field, values[field.key], before);
    if (parsed.error) errors[field.key] = parsed.error;
    else if (parsed.value !== undefined && !equal(parsed.value, before ?? null)) {
      body[field.key] = mergePatch(before, parsed.value);
    }
  }
  return { body, errors };
}

/** The re-run form of `step`; `onDone()` after the server accepted the PATCH. */
export function RerunForm({ step, onDone, onClose }) {
  const [doc, setDoc] = useState(undefined);
  useEffect(() => {
    openapiDocument().then(setDoc);
  }, []);
  const schema = useMemo(() => (doc === undefined ? undefined : patchSchema(doc, step.type)), [doc, step.type]);
  const fields = useMemo(() => (doc === undefined ? [] : formFields(step, schema, doc)), [doc, schema, step.name]);
  const [values, setValues] = useState({});
  const [errors, setErrors] = useState({});
  const [serverError, setServerError] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setValues(Object.fromEntries(fields.map((f) => [f.key, initial(f, step.parameters?.[f.key])])));
    setErrors({});
  }, [fields]);

  if (doc === undefined) return html`<p class="note">Loading the form…</p>`;
  if (doc && schema === undefined) {
    return html`<p class="note" role="status">Steps of type ${step.type} cannot be re-run.</p>`;
  }

  const set = (field, value) => {
    setValues((current) => ({ ...current, [field.key]: value }));
    if (field.kind === "json" || field.kind === "number") {
      const parsed = parse(field, value, step.parameters?.[field.key]);
      setErrors((current) => ({ ...current, [field.key]: parsed.error }));
    }
  };

  const submit = async (event) => {
    event.preventDefault();
    const { body, errors: invalid } = patchBody(fields, step.parameters, values);
    setErrors(invalid);
    if (Object.keys(invalid).length) {
      setServerError("Fix the fields marked above first.");
      return;
    }
    setBusy(true);
    setServerError(null);
    try {
      await send(stepPath(step), { method: "PATCH", body });
      onDone(body);
    } catch (error) {
      setServerError(error.message);
    } finally {
      setBusy(false);
    }
  };

  const id = (field) => `field-${field.key}`;
  return html`<form class="rerun-form" data-testid="rerun-form" aria-labelledby="rerun-title" onSubmit=${submit} novalidate>
    <h3 id="rerun-title">Re-run ${step.name} with these parameters</h3>
    <p class="note">
      Changed fields are sent as a PATCH to <code>${BASE}${stepPath(step)}</code>; the others keep their values.
    </p>
    ${fields.map((field) => {
      const describedBy = [field.description && `${id(field)}-help`, errors[field.key] && `${id(field)}-error`]
        .filter(Boolean)
        .join(" ");
      return html`<div class=${`field field-${field.kind}`} key=${field.key}>
        <label for=${id(field)}>${field.key}</label>
        ${control(field, values[field.key], (value) => set(field, value), id(field), describedBy, !!errors[field.key])}
        ${field.description && html`<p class="help" id=${`${id(field)}-help`}>${field.description}</p>`}
        ${errors[field.key] && html`<p class="field-error" id=${`${id(field)}-error`}>${errors[field.key]}</p>`}
      </div>`;
    })}
    ${serverError && html`<p class="form-error" role="alert" data-testid="rerun-error">${serverError}</p>`}
    <div class="actions">
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Sending…" : "Run again"}</button>
      <button type="button" onClick=${onClose}>Close form</button>
    </div>
  </form>`;
}

function control(field, value, onChange, id, describedBy, invalid) {
  const common = { id, name: field.key, "aria-describedby": describedBy || undefined, "aria-invalid": invalid ? "true" : undefined };
  switch (field.kind) {
    case "boolean":
      return html`<input type="checkbox" ...${common} checked=${!!value} onChange=${(e) => onChange(e.currentTarget.checked)} />`;
    case "enum":
      return html`<select ...${common} value=${value ?? ""} onChange=${(e) => onChange(e.currentTarget.value)}>
        ${field.nullable && html`<option value="">(default)</option>`}
        ${field.options.map((option) => html`<option value=${String(option)}>${String(option)}</option>`)}
      </select>`;
    case "multienum":
      return html`<select
        ...${common}
        multiple
        size=${Math.min(6, field.options.length)}
        onChange=${(e) => onChange([...e.currentTarget.selectedOptions].map((o) => o.value))}
      >
        ${field.options.map(
          (option) => html`<option value=${String(option)} selected=${(value || []).includes(String(option))}>${String(option)}</option>`,
        )}
      </select>`;
    case "number":
      return html`<input type="number" step=${field.integer ? "1" : "any"} ...${common} value=${value ?? ""} onInput=${(e) => onChange(e.currentTarget.value)} />`;
    case "code":
    case "json":
      return html`<textarea
        ...${common}
        class=${field.kind}
        rows=${Math.min(16, Math.max(3, String(value ?? "").split("\n").length + 1))}
        spellcheck="false"
        value=${value ?? ""}
        onInput=${(e) => onChange(e.currentTarget.value)}
      ></textarea>`;
    default:
      return html`<input type="text" ...${common} value=${value ?? ""} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
}
