// Small pieces shared by the views: status shapes, formatting, sortable tables, the
// confirmation dialog.

import { html, useEffect, useMemo, useRef, useState } from "./ui.js";

export const STATUSES = ["pending", "running", "finished", "failed", "cancelled"];
export const ACTIVE = new Set(["pending", "running"]);

/** The shape of a status inside a 16×16 box: never colour alone (a check, a cross, a play
 * triangle, a clock, a slashed circle). SVG children, for the graph and for <StatusIcon>. */
export function statusShape(status) {
  switch (status) {
    case "finished":
      return html`<circle class="shape-fill" cx="8" cy="8" r="7.5" />
        <path class="shape-mark" d="M4.5 8.2l2.3 2.3 4.7-4.9" />`;
    case "failed":
      return html`<circle class="shape-fill" cx="8" cy="8" r="7.5" />
        <path class="shape-mark" d="M5.2 5.2l5.6 5.6M10.8 5.2l-5.6 5.6" />`;
    case "running":
      return html`<circle class="shape-fill" cx="8" cy="8" r="7.5" />
        <path class="shape-solid" d="M6.2 4.6v6.8l5.4-3.4z" />`;
    case "cancelled":
      return html`<circle class="shape-ring" cx="8" cy="8" r="6.5" />
        <path class="shape-line" d="M3.6 12.4l8.8-8.8" />`;
    default: // pending (and anything unknown): a clock
      return html`<circle class="shape-ring" cx="8" cy="8" r="6.5" />
        <path class="shape-line" d="M8 4.5V8l2.5 1.8" />`;
  }
}

/** A status as an icon followed by its word (the word is the text cue). */
export function StatusBadge({ status, testid }) {
  return html`<span class=${`badge status-${status}`} data-testid=${testid}>
    <${StatusIcon} status=${status} /> ${status}
  </span>`;
}

export function StatusIcon({ status }) {
  return html`<svg class=${`icon status-${status}`} viewBox="0 0 16 16" width="16" height="16"
    aria-hidden="true" focusable="false">${statusShape(status)}</svg>`;
}

/** A number as people read it: integers as is, others with 4 significant digits. */
export function formatNumber(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3)
    : String(Number(value.toPrecision(4)));
}

export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function formatBytes(bytes) {
  if (typeof bytes !== "number") return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit ? size.toFixed(1) : size} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function compare(a, b) {
  const missingA = a === null || a === undefined || a === "";
  const missingB = b === null || b === undefined || b === "";
  if (missingA || missingB) return missingA - missingB; // missing values last
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { numeric: true });
}

/**
 * A table whose column headers sort it (buttons: click, Enter or Space; `aria-sort` says the
 * order). `columns`: [{key, label, render?}]; `rows`: objects.
 */
export function SortableTable({ columns, rows, caption, testid, initialSort = null }) {
  const [sort, setSort] = useState(initialSort); // {key, descending}
  const sorted = useMemo(() => {
    if (!sort) return rows;
    const order = [...rows].sort((a, b) => compare(a[sort.key], b[sort.key]));
    if (sort.descending) {
      // descending, missing values still last
      const present = order.filter((row) => row[sort.key] !== null && row[sort.key] !== undefined);
      return [...present.reverse(), ...order.slice(present.length)];
    }
    return order;
  }, [rows, sort]);
  const toggle = (key) =>
    setSort((current) => ({ key, descending: current?.key === key ? !current.descending : false }));
  return html`<div class="table-scroll" tabindex="0" role="region" aria-label=${caption}>
    <table data-testid=${testid}>
      <caption>${caption}</caption>
      <thead>
        <tr>
          ${columns.map((column) => {
            const state = sort?.key === column.key ? (sort.descending ? "descending" : "ascending") : "none";
            return html`<th scope="col" aria-sort=${state} key=${column.key}>
              <button type="button" class="sort" onClick=${() => toggle(column.key)}>
                ${column.label}
                <span class="sort-mark" aria-hidden="true">
                  ${state === "ascending" ? "▲" : state === "descending" ? "▼" : "↕"}
                </span>
              </button>
            </th>`;
          })}
        </tr>
      </thead>
      <tbody>
        ${sorted.map(
          (row, index) => html`<tr key=${row.key ?? index}>
            ${columns.map(
              (column) => html`<td class=${typeof row[column.key] === "number" ? "num" : ""}>
                ${column.render ? column.render(row) : formatValue(row[column.key])}
              </td>`,
            )}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** JSON records (PyCaret's leaderboard, cross-validation folds, trials) as a sortable
 * table: the columns are the records' keys in first-seen order. */
export function RecordsTable({ records, caption, testid, limit = 50 }) {
  const columns = useMemo(() => {
    const keys = [];
    for (const record of records.slice(0, limit)) {
      for (const key of Object.keys(record)) if (!keys.includes(key)) keys.push(key);
    }
    return keys.map((key) => ({ key, label: key }));
  }, [records, limit]);
  return html`<${SortableTable}
    columns=${columns}
    rows=${records.slice(0, limit)}
    caption=${records.length > limit ? `${caption} (first ${limit} of ${records.length})` : caption}
    testid=${testid}
  />`;
}

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select, textarea, [tabindex]:not([tabindex='-1'])";

/** Keep Tab and Shift+Tab inside `container` (a modal): from the last element to the first. */
function trapTab(event) {
  if (event.key !== "Tab") return;
  const items = [...event.currentTarget.querySelectorAll(FOCUSABLE)];
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

/**
 * A modal confirmation: the native <dialog> opened with showModal(), so the rest of the page
 * is inert and Escape closes it; Tab cycles inside it (a native modal lets focus leave for
 * the browser's own controls); focus returns to what opened it.
 */
export function ConfirmDialog({ title, children, confirmLabel, dismissLabel, onConfirm, onClose, busy }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    dialog.showModal();
    dialog.querySelector("[data-initial-focus]")?.focus(); // the harmless choice first
    return () => {
      if (dialog.open) dialog.close();
      opener?.focus?.();
    };
  }, []);
  return html`<dialog
    ref=${ref}
    role="dialog"
    aria-modal="true"
    aria-labelledby="dialog-title"
    class="dialog"
    onKeyDown=${trapTab}
    onCancel=${(event) => {
      event.preventDefault();
      onClose();
    }}
  >
    <h2 id="dialog-title">${title}</h2>
    ${children}
    <div class="actions">
      <button type="button" class="danger" disabled=${busy} onClick=${onConfirm}>${confirmLabel}</button>
      <button type="button" data-initial-focus onClick=${onClose}>${dismissLabel}</button>
    </div>
  </dialog>`;
}
