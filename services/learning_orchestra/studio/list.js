// The list of steps, virtualised: rows have a fixed height, and only those in view (plus a
// few either side) are in the DOM, so 5,000 steps cost as much as 40. A listbox: arrow keys,
// Page Up/Down, Home/End move the active row, Enter (or a click) selects it.

import { html, useEffect, useLayoutEffect, useRef, useState } from "./ui.js";
import { StatusIcon } from "./widgets.js";

/** Row height in pixels: studio.css's `.row` has the same. */
export const ROW_HEIGHT = 44;
const OVERSCAN = 8;
/** Never more rows than this in the DOM, whatever the viewport. */
const MAX_ROWS = 200;

export function StepList({ steps, selected, onSelect, total }) {
  const scroller = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [active, setActive] = useState(selected);

  useLayoutEffect(() => {
    const element = scroller.current;
    const observer = new ResizeObserver(() => setViewport(element.clientHeight || 600));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  // The selection (from the graph or the URL) becomes the active row.
  useEffect(() => {
    if (selected) setActive(selected);
  }, [selected]);

  const count = steps.length;
  let activeIndex = steps.findIndex((step) => step.name === active);
  if (activeIndex < 0) activeIndex = -1;

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(count, first + Math.min(MAX_ROWS, Math.ceil(viewport / ROW_HEIGHT) + 2 * OVERSCAN));

  /** Scroll so that row `index` is in view. */
  const reveal = (index) => {
    const element = scroller.current;
    const top = index * ROW_HEIGHT;
    if (top < element.scrollTop) element.scrollTop = top;
    else if (top + ROW_HEIGHT > element.scrollTop + element.clientHeight) {
      element.scrollTop = top + ROW_HEIGHT - element.clientHeight;
    }
    setScrollTop(element.scrollTop);
  };

  // Bring the selected row into view when it is chosen elsewhere (graph, URL), once: as soon
  // as it is in the list (a page opened on #/step/NAME loads the steps after), not again
  // whenever steps are added while the reader scrolls.
  const revealed = useRef(null);
  useEffect(() => {
    if (!selected || revealed.current === selected) return;
    const index = steps.findIndex((step) => step.name === selected);
    if (index >= 0) {
      revealed.current = selected;
      reveal(index);
    }
  }, [selected, count]);

  const onKeyDown = (event) => {
    if (!count) return;
    const page = Math.max(1, Math.floor(viewport / ROW_HEIGHT) - 1);
    const moves = {
      ArrowDown: activeIndex + 1,
      ArrowUp: activeIndex - 1,
      PageDown: activeIndex + page,
      PageUp: activeIndex - page,
      Home: 0,
      End: count - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      const index = Math.min(count - 1, Math.max(0, activeIndex < 0 ? 0 : moves[event.key]));
      setActive(steps[index].name);
      reveal(index);
    } else if ((event.key === "Enter" || event.key === " ") && activeIndex >= 0) {
      event.preventDefault();
      onSelect(steps[activeIndex].name);
    }
  };

  const rows = [];
  for (let index = first; index < last; index += 1) {
    const step = steps[index];
    const classes = ["row", `status-${step.status}`];
    if (step.name === selected) classes.push("selected");
    if (index === activeIndex) classes.push("active");
    rows.push(html`<div
      key=${step.name}
      id=${`row-${step.name}`}
      role="option"
      aria-selected=${step.name === selected ? "true" : "false"}
      aria-setsize=${count}
      aria-posinset=${index + 1}
      data-testid="step-row"
      data-name=${step.name}
      data-status=${step.status}
      class=${classes.join(" ")}
      onClick=${() => {
        setActive(step.name);
        onSelect(step.name);
      }}
    >
      <${StatusIcon} status=${step.status} />
      <span class="row-name">${step.name}</span>
      <span class="row-meta">${step.status}${step.stale ? " · stale" : ""} · ${step.type}</span>
    </div>`);
  }

  return html`<div class="list-wrap">
    <p class="note" id="list-count" aria-live="off">
      ${total === 0
        ? "No steps yet: they appear here, live, as a notebook or the API creates them."
        : count === total
          ? `${total} steps`
          : `${count} of ${total} steps match`}
    </p>
    <div class="list-scroll" ref=${scroller} onScroll=${(event) => setScrollTop(event.currentTarget.scrollTop)}>
      <div
        role="listbox"
        tabindex="0"
        aria-label="Steps"
        aria-describedby="list-count"
        aria-activedescendant=${activeIndex >= first && activeIndex < last ? `row-${steps[activeIndex].name}` : undefined}
        data-testid="step-list"
        class="list"
        style=${{ height: `${count * ROW_HEIGHT}px`, paddingTop: `${first * ROW_HEIGHT}px` }}
        onKeyDown=${onKeyDown}
      >
        ${rows}
      </div>
    </div>
  </div>`;
}
