"""References between steps inside parameter values (API.md, "References between steps").

- `"$name"` is the stored output of step `name`; `"$name.key"` is item `key` of a dict output.
- `"$$..."` is the literal string `"$..."`.
- `"#expr"` is a Python expression evaluated inside the job process; `"##..."` is `"#..."`.

Resolution is recursive inside lists and dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Invalid

_REF = re.compile(r"\$([A-Za-z0-9][A-Za-z0-9_-]{0,127})(?:\.(.+))?", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    name: str
    key: str | None = None


def parse(value: str) -> Reference | None:
    """The reference a string value makes, or None for literals and expressions."""
    if not value.startswith("$") or value.startswith("$$"):
        return None
    match = _REF.fullmatch(value)  # not match(): `$` would accept a trailing newline
    if match is None:
        raise Invalid(
            f"{value!r} is not a valid reference: write $name or $name.key "
            "(or $$... for a literal dollar sign)"
        )
    return Reference(match.group(1), match.group(2))


def referenced_names(value: Any) -> list[str]:
    """Names of the steps `value` refers to, in order of first appearance."""
    found: dict[str, None] = {}

    def walk(item: Any) -> None:
        if isinstance(item, str):
            ref = parse(item)
            if ref is not None:
                found.setdefault(ref.name)
        elif isinstance(item, dict):
            for sub in item.values():
                walk(sub)
        elif isinstance(item, list | tuple):
            for sub in item:
                walk(sub)

    walk(value)
    return list(found)


def resolve(
    value: Any,
    load: Callable[[Reference], Any],
    evaluate: Callable[[str], Any] | None = None,
) -> Any:
    """`value` with every reference replaced by `load(ref)` and every `#expr` by
    `evaluate(expr)`; escapes are unescaped. Runs in job processes only."""
    if isinstance(value, str):
        if value.startswith("$$") or value.startswith("##"):
            return value[1:]
        if value.startswith("#"):
            if evaluate is None:
                raise Invalid(f"{value!r}: this step does not evaluate #expressions")
            return evaluate(value[1:])
        ref = parse(value)
        return value if ref is None else load(ref)
    if isinstance(value, dict):
        return {k: resolve(v, load, evaluate) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, load, evaluate) for v in value]
    if isinstance(value, tuple):  # referenced_names walks tuples too
        return tuple(resolve(v, load, evaluate) for v in value)
    return value
