// Compare: which model scored best. The evaluate steps' metrics side by side (and Spark
// MLlib's per-classifier accuracy and F1), sortable by any column; and a PyCaret train
// step's compare_models leaderboard as a table.

import { html, useMemo, useState } from "./ui.js";
import { RecordsTable, SortableTable, StatusBadge } from "./widgets.js";

/** The rows of the leaderboard: one per evaluate step that has metrics (numbers), plus the
 * outputs of builder/sparkml (accuracy, F1, fit time); the metric columns in first-seen order. */
export function leaderboard(steps) {
  const rows = [];
  const metrics = [];
  const add = (step, model, values) => {
    const numbers = Object.entries(values).filter(([, value]) => typeof value === "number");
    if (!numbers.length) return;
    for (const [key] of numbers) if (!metrics.includes(key)) metrics.push(key);
    rows.push({ key: step.name, step: step.name, model, tool: step.type.split("/")[1], status: step.status, ...Object.fromEntries(numbers) });
  };
  for (const step of steps.values()) {
    if (step.type.startsWith("evaluate/") && step.metrics && typeof step.metrics === "object") {
      add(step, modelOf(step, steps), step.metrics);
    } else if (step.type === "builder/sparkml") {
      add(step, step.classifier ?? step.name, { accuracy: step.accuracy, F1: step.F1, fitTime: step.fitTime });
    }
  }
  return { rows, metrics };
}

/** What an evaluate step evaluated: PyCaret names its estimator (`model`); otherwise the
 * class of the model step it started from (`modelName`), with that step's name. */
function modelOf(step, steps) {
  if (typeof step.model === "string") return step.model;
  const name = step.parameters?.modelName;
  const model = name ? steps.get(name) : null;
  if (model?.class) return `${model.class} (${name})`;
  return name ?? step.parameters?.parentName ?? "";
}

export function Compare({ steps, revision, selected, onSelect }) {
  const board = useMemo(() => leaderboard(steps), [revision]);
  const trains = useMemo(
    () => [...steps.values()].filter((step) => step.type === "train/pycaret" && Array.isArray(step.leaderboard) && step.leaderboard.length),
    [revision],
  );
  const [chosen, setChosen] = useState(null);
  const current =
    trains.find((step) => step.name === chosen) ?? trains.find((step) => step.name === selected) ?? trains[trains.length - 1];

  const link = (row) => html`<a
    href=${`#/step/${encodeURIComponent(row.step)}`}
    onClick=${(event) => {
      event.preventDefault();
      onSelect(row.step);
    }}
    >${row.step}</a
  >`;
  const columns = [
    { key: "step", label: "Step", render: link },
    { key: "model", label: "Model" },
    { key: "tool", label: "Toolkit" },
    { key: "status", label: "Status", render: (row) => html`<${StatusBadge} status=${row.status} />` },
    ...board.metrics.map((metric) => ({ key: metric, label: metric })),
  ];

  return html`<section class="compare" aria-labelledby="compare-title">
    <h2 id="compare-title">Compare models</h2>
    ${board.rows.length
      ? html`<p class="note">Select a column header to sort by it; select it again to reverse the order.</p>
          <${SortableTable}
            columns=${columns}
            rows=${board.rows}
            caption="Metrics of the evaluate steps, by model"
            testid="leaderboard"
          />`
      : html`<p data-testid="leaderboard-empty">
          No evaluate step has metrics yet: an evaluate step's metrics appear here, one row per
          model, as soon as it finishes.
        </p>`}

    <h2>PyCaret leaderboard</h2>
    ${trains.length === 0 && html`<p>No PyCaret train step has a compare_models leaderboard yet.</p>`}
    ${trains.length > 0 &&
    html`<div class="field inline">
        <label for="pycaret-step">Train step</label>
        <select id="pycaret-step" value=${current.name} onChange=${(event) => setChosen(event.currentTarget.value)}>
          ${trains.map((step) => html`<option key=${step.name} value=${step.name}>${step.name}</option>`)}
        </select>
      </div>
      <${RecordsTable}
        key=${current.name}
        records=${current.leaderboard}
        caption=${`compare_models leaderboard of ${current.name}`}
        testid="pycaret-leaderboard"
      />`}
  </section>`;
}
