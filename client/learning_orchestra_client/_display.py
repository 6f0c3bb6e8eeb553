"""What a notebook shows: progress bars while waiting, HTML for steps and lineage.

tqdm is optional (the ``notebook`` extra): without it, waits are silent.
"""

from __future__ import annotations

import html
from typing import Any

#: Keys of a step's `progress` that count something, in the order a bar prefers them, each
#: with the key that may carry its total (e.g. ``{"epoch": 3, "epochs": 10}``).
COUNTERS = (
    ("model", "models"),  # PyCaret's compare_models: model k of n
    ("trial", "trials"),
    ("epoch", "epochs"),
    ("rows", None),
    ("bytes", None),
)

#: The colour of each status in HTML.
STATUS_COLOURS = {
    "finished": "#1a7f37",
    "failed": "#cf222e",
    "cancelled": "#9a6700",
    "running": "#0969da",
    "pending": "#6e7781",
}


class ProgressBar:
    """A tqdm bar for waiting on `names`: one step's own progress (rows, epochs, trials),
    or for several steps how many have finished. Does nothing when tqdm is missing or
    `enabled` is false."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        self.names = names
        self.bar: Any = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        label = names[0] if len(names) == 1 else f"{len(names)} steps"
        total = None if len(names) == 1 else len(names)
        # A step that counts nothing (yet) shows its status and the time; a count (rows,
        # epochs, trials) switches to tqdm's usual meter.
        status_only = "{desc} [{elapsed}]" if total is None else None
        self.bar = tqdm(
            desc=label,
            total=total,
            unit=" steps" if total else "",
            leave=True,
            bar_format=status_only,
        )
        self.finished: set[str] = set()

    def update(self, metadata: dict[str, Any]) -> None:
        """Show the state of one step (called on every change the wait sees)."""
        if self.bar is None:
            return
        status = str(metadata.get("status", ""))
        if len(self.names) == 1:
            counted = counter_of(metadata.get("progress"))
            if counted is None and self.bar.bar_format is not None:  # still status-only
                self.bar.set_description_str(f"{self.names[0]}: {status}", refresh=False)
            else:
                detail = ""
                if counted is not None:
                    unit, count, total, detail = counted
                    self.bar.bar_format = None
                    self.bar.unit = f" {unit}"
                    if total is not None:
                        self.bar.total = total
                    self.bar.n = count
                self.bar.set_description_str(self.names[0], refresh=False)
                # the counters beside the bar's own (a search's epoch), then the status
                nested = "·" in detail
                self.bar.set_postfix_str(
                    f"{detail} · {status}" if nested else status, refresh=False
                )
        else:
            if status in ("finished", "failed", "cancelled"):
                self.finished.add(str(metadata.get("name")))
            self.bar.n = len(self.finished)
            self.bar.set_postfix_str(f"{metadata.get('name')}: {status}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def counter_of(progress: Any) -> tuple[str, float, int | None, str] | None:
    """``(unit, count, total or None, detail)`` of a step's `progress` document, if it
    counts; `detail` names every counter it holds (``"trial 2/5 · epoch 3/10"``).

    The bar counts the outermost counter. A search reports its trial's epochs with the trial
    being run, so while one runs the count is the trials done plus that trial's share of its
    epochs; an event without epochs (a trial ended, a model compared) counts it done, and so
    does a final fit after the search (``stage: "final"``)."""
    if not isinstance(progress, dict):
        return None
    found = []
    for key, total_key in COUNTERS:
        count = progress.get(key)
        if isinstance(count, int | float) and not isinstance(count, bool):
            total = progress.get(total_key) if total_key else None
            found.append((key, count, int(total) if isinstance(total, int | float) else None))
    if not found:
        return None
    detail = " · ".join(
        f"{key} {count}/{total}" if total else f"{key} {count}" for key, count, total in found
    )
    (unit, count, total), inner = found[0], found[1:]
    if progress.get("stage") == "final":
        return unit, total if total is not None else count, total, f"final fit · {detail}"
    if inner and inner[0][2]:
        _, done, of = inner[0]
        count = count - 1 + min(done / of, 1.0)  # type: ignore[operator]
    shown = round(float(count), 2)
    return unit, int(shown) if shown.is_integer() else shown, total, detail


def status_html(status: str | None) -> str:
    colour = STATUS_COLOURS.get(status or "", "#6e7781")
    return f'<span style="color:{colour};font-weight:600">{html.escape(str(status))}</span>'


def step_html(metadata: dict[str, Any]) -> str:
    """A small table of a step: name, type, status, duration, runs, and what it reports."""
    rows = [
        ("step", f"<b>{html.escape(str(metadata.get('name')))}</b>"),
        ("type", html.escape(str(metadata.get("type")))),
        ("status", status_html(metadata.get("status"))),
    ]
    duration = metadata.get("durationSeconds")
    if isinstance(duration, int | float):
        rows.append(("duration", f"{duration:.2f} s"))
    for key, label in (("runs", "runs"), ("rows", "rows"), ("fields", "fields")):
        if metadata.get(key) not in (None, [], ""):
            value = metadata[key]
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append((label, html.escape(text)))
    for key in ("metrics", "progress"):
        if isinstance(metadata.get(key), dict) and metadata[key]:
            text = ", ".join(f"{k}={_short(v)}" for k, v in metadata[key].items())
            rows.append((key, html.escape(text)))
    if metadata.get("stale"):
        rows.append(("stale", "a parent changed since this output was computed"))
    if metadata.get("exception"):
        rows.append(("exception", f"<pre>{html.escape(str(metadata['exception']))}</pre>"))
    cells = "".join(
        f'<tr><th style="text-align:left">{label}</th><td style="text-align:left">{value}</td></tr>'
        for label, value in rows
    )
    return f"<table>{cells}</table>"


def lineage_html(graph: dict[str, Any]) -> str:
    """The upstream graph of a step as a table: each node with its status and parents."""
    parents: dict[str, list[str]] = {}
    for edge in graph.get("edges", []):
        parents.setdefault(edge["to"], []).append(edge["from"])
    rows = []
    for node in graph.get("nodes", []):
        name = str(node.get("name"))
        state = "missing (deleted)" if node.get("missing") else status_html(node.get("status"))
        if node.get("stale"):
            state += " · stale"
        rows.append(
            f"<tr><td><b>{html.escape(name)}</b></td><td>{html.escape(str(node.get('type')))}"
            f"</td><td>{state}</td><td>{html.escape(', '.join(parents.get(name, [])))}</td></tr>"
        )
    head = "<tr><th>step</th><th>type</th><th>status</th><th>computed from</th></tr>"
    note = "<p>(truncated at 1000 steps)</p>" if graph.get("truncated") else ""
    return f"<table>{head}{''.join(rows)}</table>{note}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
