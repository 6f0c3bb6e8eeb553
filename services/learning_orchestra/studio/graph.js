// The pipeline graph: steps as nodes, edges from `parents`, laid out left to right in layers
// (longest path from the sources, then barycentre ordering to uncross edges), drawn in SVG.
// A large pipeline is never drawn whole: above WHOLE_GRAPH steps only the selected step's
// lineage is (its ancestors and descendants, at most LINEAGE_LIMIT of them, nearest first).

import { html, useMemo, useState } from "./ui.js";
import { statusShape } from "./widgets.js";

export const WHOLE_GRAPH = 150;
export const LINEAGE_LIMIT = 150;

const NODE_W = 220;
const NODE_H = 48;
const GAP_X = 64;
const GAP_Y = 14;
const PAD = 12;

/** The children of every step (the reverse of `parents`), for descendants. */
export function childrenIndex(steps) {
  const children = new Map();
  for (const step of steps.values()) {
    for (const parent of step.parents || []) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(step.name);
    }
  }
  return children;
}

/** The names in `name`'s lineage — its ancestors and descendants, not cousins — nearest
 * first, at most `limit` (itself included). */
export function lineage(steps, children, name, limit = LINEAGE_LIMIT) {
  const up = levels(name, (n) => steps.get(n)?.parents || []);
  const down = levels(name, (n) => children.get(n) || []);
  const seen = new Set([name]);
  for (let level = 0; level < Math.max(up.length, down.length); level += 1) {
    for (const other of [...(up[level] || []), ...(down[level] || [])]) {
      if (seen.size >= limit) return seen;
      if (steps.has(other)) seen.add(other);
    }
  }
  return seen;
}

/** Breadth-first levels from `start` along `next` (cycle-safe): [[distance 1], [2], ...]. */
function levels(start, next) {
  const seen = new Set([start]);
  const result = [];
  let frontier = [start];
  while (frontier.length) {
    const level = [];
    for (const name of frontier) {
      for (const other of next(name)) {
        if (!seen.has(other)) {
          seen.add(other);
          level.push(other);
        }
      }
    }
    if (level.length) result.push(level);
    frontier = level;
  }
  return result;
}

/**
 * Positions of `names` (steps in creation order): layer = longest path from a source among
 * the shown steps (a cycle, which a PATCH can make, is cut where it closes); within a layer,
 * a few sweeps of barycentre ordering (by parents, then by children) reduce crossings.
 */
export function layout(names, steps) {
  const shown = new Set(names);
  const parentsOf = (name) => (steps.get(name)?.parents || []).filter((p) => shown.has(p) && p !== name);
  const layer = new Map();
  const visiting = new Set();
  const depth = (name) => {
    if (layer.has(name)) return layer.get(name);
    if (visiting.has(name)) return -1; // a cycle: this edge does not count
    visiting.add(name);
    let value = 0;
    for (const parent of parentsOf(name)) value = Math.max(value, depth(parent) + 1);
    visiting.delete(name);
    layer.set(name, value);
    return value;
  };
  names.forEach(depth);

  const layers = [];
  for (const name of names) (layers[layer.get(name)] ||= []).push(name);
  const childrenOf = new Map();
  for (const name of names) for (const parent of parentsOf(name)) (childrenOf.get(parent) || childrenOf.set(parent, []).get(parent)).push(name);

  const position = new Map();
  const index = () => layers.forEach((column) => column.forEach((name, i) => position.set(name, i)));
  index();
  const sweep = (column, neighbours) => {
    const score = new Map(
      column.map((name, i) => {
        const around = neighbours(name).filter((n) => position.has(n));
        return [name, around.length ? around.reduce((sum, n) => sum + position.get(n), 0) / around.length : i];
      }),
    );
    column.sort((a, b) => score.get(a) - score.get(b));
    column.forEach((name, i) => position.set(name, i));
  };
  for (let pass = 0; pass < 4; pass += 1) {
    for (let l = 1; l < layers.length; l += 1) sweep(layers[l], parentsOf);
    for (let l = layers.length - 2; l >= 0; l -= 1) sweep(layers[l], (n) => childrenOf.get(n) || []);
  }

  const tallest = Math.max(1, ...layers.map((column) => column.length));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const points = new Map();
  layers.forEach((column, l) => {
    const offset = (height - (column.length * NODE_H + (column.length - 1) * GAP_Y)) / 2;
    column.forEach((name, i) => points.set(name, { x: PAD + l * (NODE_W + GAP_X), y: offset + i * (NODE_H + GAP_Y) }));
  });
  const edges = [];
  for (const name of names) for (const parent of parentsOf(name)) edges.push({ from: parent, to: name });
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
  return { points, edges, width, height };
}

function edgePath(from, to) {
  const x1 = from.x + NODE_W;
  const y1 = from.y + NODE_H / 2;
  const x2 = to.x;
  const y2 = to.y + NODE_H / 2;
  const bend = Math.max(24, (x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2 - 6},${y2}`;
}

/** The graph of `steps` (a Map, creation order) with `matches` (names passing the filters)
 * drawn normally and the others dimmed. */
export function Graph({ steps, revision, selected, matches, onSelect }) {
  const view = useMemo(() => {
    if (steps.size <= WHOLE_GRAPH) return { names: [...steps.keys()], partial: false };
    if (!selected || !steps.has(selected)) return { names: [], partial: true };
    const related = lineage(steps, childrenIndex(steps), selected);
    return { names: [...steps.keys()].filter((name) => related.has(name)), partial: true };
  }, [revision, selected, steps.size]);
  const drawn = useMemo(() => layout(view.names, steps), [view, revision]);

  // One tab stop for the whole graph (the selected node, else the first): arrow keys move
  // between nodes — left and right along the edges, up and down within a column.
  const [focused, setFocused] = useState(null);
  const stop = [focused, selected].find((name) => name && drawn.points.has(name)) ?? view.names[0];
  const neighbour = (name, key) => {
    const here = drawn.points.get(name);
    const column = view.names.filter((other) => drawn.points.get(other).x === here.x);
    column.sort((a, b) => drawn.points.get(a).y - drawn.points.get(b).y);
    const nearest = (names) =>
      names.sort((a, b) => Math.abs(drawn.points.get(a).y - here.y) - Math.abs(drawn.points.get(b).y - here.y))[0];
    switch (key) {
      case "ArrowDown":
        return column[column.indexOf(name) + 1];
      case "ArrowUp":
        return column[column.indexOf(name) - 1];
      case "ArrowRight":
        return nearest(drawn.edges.filter((edge) => edge.from === name).map((edge) => edge.to));
      case "ArrowLeft":
        return nearest(drawn.edges.filter((edge) => edge.to === name).map((edge) => edge.from));
      default:
        return undefined;
    }
  };
  const onKeyDown = (name) => (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect(name);
      return;
    }
    const target = neighbour(name, event.key);
    if (event.key.startsWith("Arrow")) event.preventDefault();
    if (target) {
      setFocused(target);
      event.currentTarget.ownerSVGElement.querySelector(`[data-name="${target}"]`)?.focus();
    }
  };

  let note;
  if (!view.partial) note = `${steps.size} step${steps.size === 1 ? "" : "s"}`;
  else if (!view.names.length) note = `${steps.size} steps: select one to see its lineage`;
  else note = `Lineage of ${selected}: ${view.names.length} of ${steps.size} steps`;

  return html`<section class="graph-section" aria-labelledby="graph-title">
    <div class="section-head">
      <h2 id="graph-title">Pipeline</h2>
      <p class="note">${note}</p>
      <${Legend} />
    </div>
    <p class="sr-only" id="graph-help">Arrow keys move between steps along the edges; Enter selects.</p>
    <div class="graph-scroll">
      <svg
        data-testid="graph"
        role="group"
        aria-label=${`Pipeline graph: ${note}`}
        aria-describedby="graph-help"
        width=${Math.max(drawn.width, 200)}
        height=${Math.max(drawn.height, 60)}
        viewBox=${`0 0 ${Math.max(drawn.width, 200)} ${Math.max(drawn.height, 60)}`}
      >
        <defs>
          <clipPath id="node-clip"><rect x="0" y="0" width=${NODE_W - 8} height=${NODE_H} /></clipPath>
          <marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto">
            <path d="M0,0 L8,4 L0,8 z" class="arrow-head" />
          </marker>
        </defs>
        ${drawn.edges.map(
          ({ from, to }) => html`<path
            key=${`${from}>${to}`}
            data-testid="edge"
            data-from=${from}
            data-to=${to}
            class=${`edge${matches.has(from) && matches.has(to) ? "" : " dim"}`}
            d=${edgePath(drawn.points.get(from), drawn.points.get(to))}
            marker-end="url(#arrow)"
          />`,
        )}
        ${view.names.map((name) => {
          const step = steps.get(name);
          const point = drawn.points.get(name);
          const status = step.status;
          const classes = ["node", `status-${status}`];
          if (!matches.has(name)) classes.push("dim");
          if (step.stale) classes.push("stale");
          if (name === selected) classes.push("selected");
          // The node's accessible name is its text (name, status, type), clipped by the box
          // but whole in the DOM: what is seen is what a screen reader says.
          const second = `${status}${step.stale ? " · stale" : ""} · ${step.type}`;
          return html`<g
            key=${name}
            data-testid="node"
            data-name=${name}
            data-status=${status}
            data-stale=${step.stale ? "true" : undefined}
            class=${classes.join(" ")}
            transform=${`translate(${point.x},${point.y})`}
            tabindex=${name === stop ? "0" : "-1"}
            role="button"
            aria-pressed=${name === selected ? "true" : "false"}
            onClick=${() => onSelect(name)}
            onKeyDown=${onKeyDown(name)}
            onFocus=${() => setFocused(name)}
          >
            <rect class="box" width=${NODE_W} height=${NODE_H} rx="6" />
            <g transform="translate(8,8)" class=${`icon status-${status}`}>${statusShape(status)}</g>
            <text class="label" x="30" y="20" clip-path="url(#node-clip)">${name}</text>
            <text class="sub" x="30" y="37" clip-path="url(#node-clip)">${second}</text>
          </g>`;
        })}
      </svg>
    </div>
  </section>`;
}

function Legend() {
  return html`<ul class="legend" aria-label="Status legend">
    ${["pending", "running", "finished", "failed", "cancelled"].map(
      (status) => html`<li key=${status}>
        <svg class=${`icon status-${status}`} viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
          ${statusShape(status)}
        </svg>
        ${status}
      </li>`,
    )}
    <li><span class="stale-mark" aria-hidden="true"></span> stale (dashed)</li>
  </ul>`;
}
