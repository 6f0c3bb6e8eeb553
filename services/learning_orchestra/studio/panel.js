// The step panel: everything about one step — status, duration, parameters, the error and
// its traceback, live progress, the log's tail, a preview of a table, a plot, metrics, files —
// and its actions: re-run (with the generated form), cancel, delete. Each part reads what it
// shows from the API when the step's `version` changes (the feed says so), never on a timer,
// except the log of a running step, which grows between versions.

import { html, useEffect, useRef, useState } from "./ui.js";
import { blob, call, send, stepPath, BASE } from "./api.js";
import { announce } from "./store.js";
import { RerunForm } from "./forms.js";
import {
  ACTIVE,
  ConfirmDialog,
  RecordsTable,
  StatusBadge,
  formatBytes,
  formatDuration,
  formatNumber,
  formatTime,
  formatValue,
} from "./widgets.js";

/** Rows shown in a table preview. */
const PREVIEW_ROWS = 20;
/** How often the log of a running step is read again, in ms. */
const LOG_REFRESH = 2000;
const IMAGE_FILE = /\.(png|jpe?g|gif|webp)$/i;
const NUMERIC = new Set(["integer", "float"]);

/** Run `load(signal)` whenever `key` changes (null: nothing to load): {data, error}. */
function useLoad(key, load) {
  const [state, setState] = useState({ key: null, data: null, error: null });
  useEffect(() => {
    if (key === null) {
      setState({ key: null, data: null, error: null });
      return undefined;
    }
    const controller = new AbortController();
    load(controller.signal).then(
      (data) => setState({ key, data, error: null }),
      (error) => error.name !== "AbortError" && setState({ key, data: null, error }),
    );
    return () => controller.abort();
  }, [key]);
  // never another key's answer (the previous step's, while this one's loads)
  return state.key === key ? state : { key, data: null, error: null };
}

/** A Blob of `path` as an object URL, read again when `key` changes, revoked then. */
function useBlobUrl(path, key = path) {
  const [url, setUrl] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!path) return undefined;
    let objectUrl = null;
    const controller = new AbortController();
    blob(path, { signal: controller.signal }).then(
      (data) => {
        objectUrl = URL.createObjectURL(data);
        setUrl(objectUrl);
        setError(null);
      },
      (failure) => failure.name !== "AbortError" && setError(failure.message),
    );
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      setUrl(null);
    };
  }, [path, key]);
  return { url, error };
}

/** The current time, ticking every second while `running`. */
function useNow(running) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [running]);
  return now;
}

export function StepPanel({ name, step, onSelect, onDeleted }) {
  const [dialog, setDialog] = useState(false);
  const [form, setForm] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);

  useEffect(() => {
    setForm(false);
    setDialog(false);
    setMessage(null);
  }, [name]);

  if (!name) {
    return html`<section class="panel empty" data-testid="step-panel" aria-label="Step">
      <p>Select a step in the list or the graph to see its details.</p>
    </section>`;
  }
  if (!step) {
    return html`<section class="panel empty" data-testid="step-panel" aria-label="Step">
      <p>There is no step named <strong>${name}</strong> (it may have been deleted).</p>
    </section>`;
  }

  const act = async (what, request, done) => {
    setBusy(true);
    setMessage(null);
    try {
      await request();
      done?.();
      announce(what);
    } catch (error) {
      setMessage({ error: true, text: error.message });
    } finally {
      setBusy(false);
    }
  };

  const cancel = () =>
    act(`Cancel of ${step.name} requested`, () => send(`${stepPath(step)}/cancel`, { method: "POST" }));
  const remove = () =>
    act(`Deleted ${step.name}`, () => send(stepPath(step), { method: "DELETE" }), () => {
      setDialog(false);
      onDeleted(step.name);
    });

  return html`<section class="panel" data-testid="step-panel" aria-labelledby="panel-title">
    <header class="panel-head">
      <h2 id="panel-title">${step.name}</h2>
      <span class="type">${step.type}</span>
      <${StatusBadge} status=${step.status} testid="step-status" />
      ${step.stale && html`<span class="badge stale" title="a parent changed after this output was computed">stale</span>`}
    </header>
    <div class="actions" role="group" aria-label="Actions">
      <button type="button" aria-expanded=${form ? "true" : "false"} onClick=${() => setForm(!form)}>Re-run</button>
      ${ACTIVE.has(step.status) && html`<button type="button" disabled=${busy} onClick=${cancel}>Cancel</button>`}
      <button type="button" class="danger" onClick=${() => setDialog(true)}>Delete</button>
    </div>
    ${message && html`<p class=${message.error ? "form-error" : "note"} role="alert">${message.text}</p>`}
    ${form &&
    html`<${RerunForm}
      step=${step}
      onClose=${() => setForm(false)}
      onDone=${() => {
        setForm(false);
        setMessage({ error: false, text: `Re-run of ${step.name} requested.` });
        announce(`Re-run of ${step.name} requested`);
      }}
    />`}
    ${dialog &&
    html`<${ConfirmDialog}
      title=${`Delete ${step.name}?`}
      confirmLabel="Delete step"
      dismissLabel="Keep it"
      busy=${busy}
      onConfirm=${remove}
      onClose=${() => setDialog(false)}
    >
      <p>
        Its output, run records and files are removed; steps computed from it become stale.
        This cannot be undone.
      </p>
      ${message?.error && html`<p class="form-error" role="alert">${message.text}</p>`}
    <//>`}
    <${Summary} step=${step} onSelect=${onSelect} />
    ${(step.exception || step.traceback) && html`<${Failure} step=${step} />`}
    ${step.progress && html`<${Progress} progress=${step.progress} status=${step.status} />`}
    <${Metrics} step=${step} />
    ${step.image && step.status === "finished" && html`<${Plot} step=${step} />`}
    ${step.types && step.status === "finished" && html`<${Preview} step=${step} />`}
    ${step.status === "finished" && html`<${Files} step=${step} />`}
    <${LogTail} step=${step} />
    <${Parameters} parameters=${step.parameters} />
    <details class="raw">
      <summary>All metadata (JSON)</summary>
      <pre tabindex="0">${JSON.stringify(step, null, 2)}</pre>
    </details>
  </section>`;
}

function Summary({ step, onSelect }) {
  const running = step.status === "running";
  const now = useNow(running);
  let duration = step.durationSeconds;
  if (step.startedAt && (running || duration === null || duration === undefined)) {
    const end = running || !step.finishedAt ? now : Date.parse(step.finishedAt);
    duration = Math.max(0, (end - Date.parse(step.startedAt)) / 1000);
  }
  const names = (list) =>
    list?.length
      ? list.map(
          (parent, i) => html`${i ? ", " : ""}<a href=${`#/step/${encodeURIComponent(parent)}`} onClick=${(e) => {
            e.preventDefault();
            onSelect(parent);
          }}>${parent}</a>`,
        )
      : "—";
  return html`<dl class="summary">
    <div><dt>Created</dt><dd>${formatTime(step.timeCreated)}</dd></div>
    <div><dt>Started</dt><dd>${formatTime(step.startedAt)}</dd></div>
    <div><dt>Finished</dt><dd>${formatTime(step.finishedAt)}</dd></div>
    <div>
      <dt>Duration</dt>
      <dd data-testid="step-duration">${step.startedAt ? formatDuration(duration) : "not started"}${running ? " so far" : ""}</dd>
    </div>
    <div><dt>Runs</dt><dd>${step.runs ?? "—"}</dd></div>
    <div><dt>Parents</dt><dd>${names(step.parents)}</dd></div>
    ${step.waitingFor?.length ? html`<div><dt>Waiting for</dt><dd>${names(step.waitingFor)}</dd></div>` : null}
    ${step.rows !== undefined && html`<div><dt>Rows</dt><dd>${formatNumber(step.rows)}</dd></div>`}
    ${step.description && html`<div class="wide"><dt>Description</dt><dd>${step.description}</dd></div>`}
  </dl>`;
}

function Failure({ step }) {
  return html`<section class="failure" data-testid="step-error" aria-labelledby="error-title">
    <h3 id="error-title">${step.status === "cancelled" ? "Cancelled" : "Error"}</h3>
    <p class="exception">${step.exception}</p>
    ${step.traceback && html`<pre class="traceback" tabindex="0" aria-label="Traceback">${step.traceback}</pre>`}
  </section>`;
}

/** Progress as bars where it counts something (epochs, trials, models, rows of a known
 * total), and the other fields as values: docs/api.md lists what each toolkit reports. */
export function describeProgress(progress) {
  const bars = [];
  const values = [];
  const used = new Set();
  const bar = (label, value, max, extra = "") => bars.push({ label, value, max, text: `${label} ${value} of ${max}${extra}` });
  if (typeof progress.trial === "number" && typeof progress.trials === "number") {
    bar("Trial", progress.trial, progress.trials);
    used.add("trial").add("trials");
  }
  if (typeof progress.epoch === "number" && typeof progress.epochs === "number") {
    const loss = typeof progress.loss === "number" ? `, loss ${formatNumber(progress.loss)}` : "";
    bar("Epoch", progress.epoch, progress.epochs, loss);
    used.add("epoch").add("epochs").add("loss");
  }
  if (typeof progress.model === "number" && typeof progress.models === "number") {
    bar("Model", progress.model, progress.models, progress.name ? ` (${progress.name})` : "");
    used.add("model").add("models").add("name").add("estimator");
  }
  if (typeof progress.rows === "number") {
    values.push({ label: "Rows ingested", text: formatNumber(progress.rows) });
    used.add("rows");
  }
  if (typeof progress.bytes === "number") {
    values.push({ label: "Downloaded", text: formatBytes(progress.bytes) });
    used.add("bytes");
  }
  for (const [key, value] of Object.entries(progress)) {
    if (!used.has(key)) values.push({ label: key, text: formatValue(value) });
  }
  return { bars, values };
}

function Progress({ progress, status }) {
  if (typeof progress !== "object") return null;
  const { bars, values } = describeProgress(progress);
  return html`<section data-testid="step-progress" aria-labelledby="progress-title">
    <h3 id="progress-title">Progress${status === "running" ? "" : ` (${status})`}</h3>
    ${bars.map(
      (item) => html`<div class="bar" key=${item.label}>
        <progress max=${item.max} value=${item.value} aria-label=${item.label}></progress>
        <span>${item.text}</span>
      </div>`,
    )}
    ${values.length > 0 &&
    html`<dl class="values">
      ${values.map((item) => html`<div key=${item.label}><dt>${item.label}</dt><dd>${item.text}</dd></div>`)}
    </dl>`}
  </section>`;
}

/** What a step measured: evaluate metrics, a search's best score and parameters, the last
 * epoch of a Keras History, and the tables (PyCaret leaderboard, cross-validation, trials). */
function Metrics({ step }) {
  const scalars = [];
  if (step.metrics && typeof step.metrics === "object" && !Array.isArray(step.metrics)) {
    for (const [key, value] of Object.entries(step.metrics)) scalars.push([key, value]);
  } else if (step.metrics !== undefined && step.metrics !== null) scalars.push(["metrics", step.metrics]);
  if (step.model !== undefined && typeof step.model !== "object") scalars.push(["model", step.model]);
  for (const key of ["accuracy", "F1", "fitTime", "bestScore"]) {
    if (step[key] !== undefined && step[key] !== null) scalars.push([key, step[key]]);
  }
  if (step.history && typeof step.history === "object") {
    for (const [key, series] of Object.entries(step.history)) {
      if (Array.isArray(series) && series.length) scalars.push([`${key} (epoch ${series.length})`, series[series.length - 1]]);
    }
  }
  const tables = [
    ["leaderboard", "Leaderboard (compare_models)"],
    ["cvResults", "Cross-validation"],
    ["trials", "Trials"],
    ["setupSummary", "Setup"],
  ].filter(([key]) => Array.isArray(step[key]) && step[key].length && typeof step[key][0] === "object");
  const params = step.bestParams && typeof step.bestParams === "object" ? Object.entries(step.bestParams) : [];
  if (!scalars.length && !tables.length && !params.length) return null;
  return html`<section data-testid="step-metrics" aria-labelledby="metrics-title">
    <h3 id="metrics-title">Metrics</h3>
    ${scalars.length > 0 &&
    html`<table class="kv">
      <caption class="sr-only">Metrics of ${step.name}</caption>
      <tbody>
        ${scalars.map(([key, value]) => html`<tr key=${key}><th scope="row">${key}</th><td class="num">${formatValue(value)}</td></tr>`)}
      </tbody>
    </table>`}
    ${params.length > 0 &&
    html`<table class="kv">
      <caption>Best parameters</caption>
      <tbody>
        ${params.map(([key, value]) => html`<tr key=${key}><th scope="row">${key}</th><td>${formatValue(value)}</td></tr>`)}
      </tbody>
    </table>`}
    ${tables.map(([key, caption]) => html`<${RecordsTable} key=${key} records=${step[key]} caption=${caption} testid=${`step-${key}`} />`)}
  </section>`;
}

function Plot({ step }) {
  const { url, error } = useBlobUrl(`${stepPath(step)}/image`, `${step.name}:${step.version}`);
  return html`<section aria-labelledby="plot-title">
    <h3 id="plot-title">Plot</h3>
    ${error && html`<p class="form-error">${error}</p>`}
    ${url && html`<img data-testid="step-plot" class="plot" src=${url} alt=${`Plot of ${step.name}`} />`}
  </section>`;
}

function Preview({ step }) {
  const { data, error } = useLoad(`${step.name}:${step.version}`, (signal) =>
    call(`${stepPath(step)}?skip=1&limit=${PREVIEW_ROWS}`, { signal }).then((answer) => answer.result),
  );
  const fields = step.fields || Object.keys(step.types || {});
  return html`<section data-testid="step-preview" aria-labelledby="preview-title">
    <h3 id="preview-title">Table</h3>
    ${error && html`<p class="form-error">${error.message}</p>`}
    ${data &&
    html`<div class="table-scroll" tabindex="0" role="region" aria-labelledby="preview-title">
      <table class="preview">
        <caption>
          First ${Math.min(data.length, PREVIEW_ROWS)} of ${formatNumber(step.rows ?? data.length)} rows
        </caption>
        <thead>
          <tr>
            ${fields.map(
              (field) => html`<th scope="col" key=${field} class=${NUMERIC.has(step.types?.[field]) ? "num" : ""}>
                ${field} <span class="coltype">${step.types?.[field] ?? ""}</span>
              </th>`,
            )}
          </tr>
        </thead>
        <tbody>
          ${data.map(
            (row, i) => html`<tr key=${i}>
              ${fields.map((field) => html`<td class=${NUMERIC.has(step.types?.[field]) ? "num" : ""}>${formatValue(row[field])}</td>`)}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`}
  </section>`;
}

/** Download `path` with the token, then save it as `filename`: a plain link cannot send the
 * token, so the click fetches the file and hands the browser a blob URL. */
async function download(event, path, filename) {
  event.preventDefault();
  const link = event.currentTarget;
  link.setAttribute("aria-busy", "true");
  try {
    const url = URL.createObjectURL(await blob(path));
    const save = document.createElement("a");
    save.href = url;
    save.download = filename.split("/").pop();
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    announce(`Download failed: ${error.message}`);
  } finally {
    link.removeAttribute("aria-busy");
  }
}

function Files({ step }) {
  const { data, error } = useLoad(`${step.name}:${step.version}`, (signal) =>
    call(`${stepPath(step)}/files`, { signal }).then((answer) => answer.result),
  );
  if (error) return html`<section data-testid="step-files"><h3>Files</h3><p class="note">${error.message}</p></section>`;
  if (!data) return null;
  const path = (file) => `${stepPath(step)}/files/${file.filename.split("/").map(encodeURIComponent).join("/")}`;
  // images a step wrote, shown inline (an explore step's own plot is shown above already)
  const images = step.image ? [] : data.filter((file) => IMAGE_FILE.test(file.filename)).slice(0, 4);
  return html`<section data-testid="step-files" aria-labelledby="files-title">
    <h3 id="files-title">Files</h3>
    ${data.length === 0 && html`<p class="note">No files.</p>`}
    <ul class="files">
      ${data.map(
        (file) => html`<li key=${file.filename}>
          <a href=${BASE + path(file)} download=${file.filename.split("/").pop()} onClick=${(e) => download(e, path(file), file.filename)}>
            ${file.filename}
          </a>
          <span class="note"> ${formatBytes(file.size)}</span>
        </li>`,
      )}
    </ul>
    ${images.map((file) => html`<${FileImage} key=${file.filename} path=${path(file)} filename=${file.filename} />`)}
  </section>`;
}

function FileImage({ path, filename }) {
  const { url } = useBlobUrl(path);
  return url ? html`<img class="plot" data-testid="step-plot" src=${url} alt=${filename} />` : null;
}

/** The log's tail, following it: read again on every change of the step and, while it
 * runs, every LOG_REFRESH ms; scrolled to the end unless the reader scrolled up. */
function LogTail({ step }) {
  const [log, setLog] = useState(null);
  const [tick, setTick] = useState(0);
  const box = useRef(null);
  const follow = useRef(true);
  const running = step.status === "running";

  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => setTick((n) => n + 1), LOG_REFRESH);
    return () => clearInterval(timer);
  }, [running, step.name]);

  useEffect(() => {
    const controller = new AbortController();
    call(`${stepPath(step)}/logs`, { signal: controller.signal }).then(
      (answer) => setLog(answer),
      (error) => error.name !== "AbortError" && setLog({ result: "", error: error.message }),
    );
    return () => controller.abort();
  }, [step.name, step.version, tick]);

  useEffect(() => {
    follow.current = true;
    setLog(null);
  }, [step.name]);

  useEffect(() => {
    const element = box.current;
    if (element && follow.current) element.scrollTop = element.scrollHeight;
  }, [log?.result]);

  const onScroll = (event) => {
    const element = event.currentTarget;
    follow.current = element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
  };
  const text = log?.result ?? "";
  return html`<section aria-labelledby="log-title">
    <h3 id="log-title">Log${running ? " (following)" : ""}</h3>
    ${log?.truncated && html`<p class="note">The last ${formatBytes(text.length)} of ${formatBytes(log.size)}.</p>`}
    ${log?.error && html`<p class="note">${log.error}</p>`}
    <pre class="log" data-testid="step-log" tabindex="0" aria-label="Log" ref=${box} onScroll=${onScroll}>${text || (log ? "(empty)" : "Loading…")}</pre>
  </section>`;
}

function Parameters({ parameters }) {
  const entries = Object.entries(parameters || {});
  return html`<section data-testid="step-parameters" aria-labelledby="parameters-title">
    <h3 id="parameters-title">Parameters</h3>
    ${entries.length === 0 && html`<p class="note">None.</p>`}
    <dl class="parameters">
      ${entries.map(
        ([key, value]) => html`<div key=${key}>
          <dt>${key}</dt>
          <dd>
            ${value === null || value === undefined
              ? "—"
              : typeof value === "string" && !value.includes("\n")
                ? value
                : html`<pre tabindex="0">${typeof value === "string" ? value : JSON.stringify(value, null, 2)}</pre>`}
          </dd>
        </div>`,
      )}
    </dl>
  </section>`;
}
