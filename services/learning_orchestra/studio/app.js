// The studio: a live view of every step of the server that serves it. The page's layout —
// header (connection, token, views), the step list with its filters, the graph and the step
// panel or the compare view — and the selection, kept in the URL hash (#/step/NAME).

import { html, render, useEffect, useMemo, useRef, useState } from "./ui.js";
import { getToken, setToken } from "./api.js";
import { announce, connect, store, useStore } from "./store.js";
import { Graph } from "./graph.js";
import { StepList } from "./list.js";
import { StepPanel } from "./panel.js";
import { Compare } from "./compare.js";
import { STATUSES } from "./widgets.js";

const HASH = /^#\/step\/(.+)$/;

function selectionFromHash() {
  const match = HASH.exec(location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

/** The selected step's name, two-way bound to the URL hash (back and forward work). */
function useSelection() {
  const [selected, setSelected] = useState(selectionFromHash);
  useEffect(() => {
    const onHash = () => setSelected(selectionFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const select = (name) => {
    location.hash = name ? `#/step/${encodeURIComponent(name)}` : "#/";
  };
  return [selected, select];
}

/** The skip link focuses <main> without touching the hash, which holds the selection. */
function skipToMain(event) {
  event.preventDefault();
  document.getElementById("main").focus();
}

function matchesFilters(step, filters) {
  return (
    (!filters.name || step.name.toLowerCase().includes(filters.name.toLowerCase())) &&
    (!filters.type || step.type === filters.type) &&
    (!filters.status || step.status === filters.status)
  );
}

function App() {
  const state = useStore();
  const [selected, select] = useSelection();
  const [filters, setFilters] = useState({ name: "", type: "", status: "" });
  const [view, setView] = useState("steps");

  const all = useMemo(() => [...state.steps.values()], [state.revision]);
  const types = useMemo(() => [...new Set(all.map((step) => step.type))].sort(), [all]);
  const shown = useMemo(() => all.filter((step) => matchesFilters(step, filters)), [all, filters]);
  const matches = useMemo(() => new Set(shown.map((step) => step.name)), [shown]);
  const step = selected ? state.steps.get(selected) : null;

  // Say when the selected step's status changes (not every change of every step).
  const heard = useRef({ name: null, status: null });
  useEffect(() => {
    const last = heard.current;
    if (step && last.name === step.name && last.status !== step.status) announce(`${step.name} is ${step.status}`);
    heard.current = { name: step?.name ?? null, status: step?.status ?? null };
  }, [step?.name, step?.status]);

  const chooseStep = (name) => {
    setView("steps");
    select(name);
  };
  const filter = (key) => (event) => setFilters({ ...filters, [key]: event.currentTarget.value });

  return html`
    <header class="top">
      <a class="skip" href="#main" onClick=${skipToMain}>Skip to the main view</a>
      <h1><span class="brand">Learning Orchestra</span> Studio</h1>
      <nav class="views" aria-label="Views">
        <button type="button" aria-pressed=${view === "steps" ? "true" : "false"} onClick=${() => setView("steps")}>Steps</button>
        <button type="button" aria-pressed=${view === "compare" ? "true" : "false"} onClick=${() => setView("compare")}>Compare</button>
      </nav>
      <${FeedIndicator} state=${state} />
      ${getToken() && !state.needToken && html`<button type="button" class="quiet" onClick=${forgetToken}>Forget token</button>`}
    </header>
    ${state.needToken && html`<${TokenForm} />`}
    <div class="layout">
      <nav class="sidebar" aria-label="Steps">
        <form class="filters" role="search" aria-label="Filter steps" onSubmit=${(e) => e.preventDefault()}>
          <div class="field">
            <label for="filter-name">Name contains</label>
            <input id="filter-name" name="filter-name" type="search" autocomplete="off" value=${filters.name} onInput=${filter("name")} />
          </div>
          <div class="field-row">
            <div class="field">
              <label for="filter-type">Type</label>
              <select id="filter-type" name="filter-type" value=${filters.type} onChange=${filter("type")}>
                <option value="">All types</option>
                ${types.map((type) => html`<option key=${type} value=${type}>${type}</option>`)}
              </select>
            </div>
            <div class="field">
              <label for="filter-status">Status</label>
              <select id="filter-status" name="filter-status" value=${filters.status} onChange=${filter("status")}>
                <option value="">All statuses</option>
                ${STATUSES.map((status) => html`<option key=${status} value=${status}>${status}</option>`)}
              </select>
            </div>
          </div>
        </form>
        <${StepList} steps=${shown} total=${all.length} selected=${selected} onSelect=${chooseStep} />
      </nav>
      <main id="main" tabindex="-1">
        ${view === "steps"
          ? html`<${Graph} steps=${state.steps} revision=${state.revision} selected=${selected} matches=${matches} onSelect=${chooseStep} />
              <${StepPanel} name=${selected} step=${step} onSelect=${chooseStep} onDeleted=${() => select(null)} />`
          : html`<${Compare} steps=${state.steps} revision=${state.revision} selected=${selected} onSelect=${chooseStep} />`}
      </main>
    </div>
    <div class="sr-only" aria-live="polite" aria-atomic="true">${state.announcement}</div>
  `;
}

const FEED_TEXT = {
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  unauthorized: "Token needed",
};

function FeedIndicator({ state }) {
  let text = FEED_TEXT[state.feed] ?? state.feed;
  if (state.feed === "live") text = state.feedMode === "poll" ? "Live (polling)" : "Live";
  if (state.loading !== null && state.feed === "connecting") text = `Loading steps… ${state.loading}`;
  return html`<p class=${`feed feed-${state.feed}`} data-testid="feed-state" title=${state.error ?? ""}>
    <span class="dot" aria-hidden="true"></span>${text}
  </p>`;
}

/** Drop this tab's token; the server then asks for one again (if it needs one). */
function forgetToken() {
  setToken("");
  connect();
}

function TokenForm() {
  const [value, setValue] = useState("");
  const refused = Boolean(getToken());
  const submit = (event) => {
    event.preventDefault();
    if (!value.trim()) return;
    setToken(value.trim());
    connect();
  };
  return html`<section class="token" aria-labelledby="token-title">
    <form data-testid="token-form" onSubmit=${submit}>
      <h2 id="token-title">Token required</h2>
      <p>
        ${refused ? "The server refused the token this tab had. " : ""}
        This server needs an API token: enter one of those it was started with (<code>LO_API_TOKENS</code>). It is
        kept in this tab's session storage only, and sent as an <code>Authorization</code> header.
      </p>
      <div class="field inline">
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
        <button type="submit" class="primary">Use token</button>
      </div>
    </form>
  </section>`;
}

document.body.dataset.feed = store.feed;
render(html`<${App} />`, document.getElementById("app"));
connect();
