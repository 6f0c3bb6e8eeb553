"""Column names in the requests of table steps (projection, histogram, dataType, ...).

`ColumnNames` is the request type of a list of columns; `require_columns` checks names against
a table step's `fields` metadata, up front in the API process (a `422` naming the field at
fault) when the input's columns are known, and again inside the job (the step fails) against
the table itself, since the input may have been re-run with other columns meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from .errors import Invalid, JobFailed
from .model import Doc, Status


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{name!r} is listed twice")
        seen.add(name)
    return names


#: A non-empty list of distinct, non-empty column names.
ColumnNames = Annotated[
    list[Annotated[str, Field(min_length=1)]], Field(min_length=1), AfterValidator(_unique)
]


def missing_message(missing: Sequence[str], table: str, columns: Iterable[str]) -> str:
    """'no column 'x' in 'titanic'; its columns are a, b, c'."""
    what = "column" if len(missing) == 1 else "columns"
    listed = ", ".join(repr(m) for m in missing)
    return f"no {what} {listed} in {table!r}; its columns are {', '.join(columns)}"


def require_columns(table: Doc, names: Iterable[str], field: str) -> None:
    """Raise `Invalid` (422, naming request field `field`) unless table step `table` has every
    column of `names` according to its metadata (checks nothing when it lists no `fields`)."""
    columns = table.get("fields")
    if columns is None:
        return
    missing = [n for n in names if n not in columns]
    if missing:
        raise Invalid(
            f"{field}: {missing_message(missing, table['name'], columns)}",
            {"field": field, "missing": missing, "fields": columns},
        )


def require_columns_in_job(columns: Sequence[str], names: Iterable[str], table: str) -> None:
    """Inside a job: fail the step unless the table `table` (with `columns`) has `names`."""
    missing = [n for n in names if n not in columns]
    if missing:
        raise JobFailed(missing_message(missing, table, columns))


StepCheck = Callable[[Mapping[str, Any], Mapping[str, Doc]], None]


def input_table_check(
    input_field: str = "inputDatasetName", names_field: str | None = "names"
) -> StepCheck:
    """A `StepType.check`: the columns listed in `names_field` must be columns of the input
    named by `input_field`. Checked only when the input's columns are known for sure: it has
    finished and its metadata lists its `fields` (every table step records them; a
    `dataset/generic` has none). Otherwise the job checks, and fails the step if need be."""

    def check(params: Mapping[str, Any], parents: Mapping[str, Doc]) -> None:
        parent = parents[params[input_field]]
        if parent["status"] != Status.FINISHED or parent.get("fields") is None:
            return
        if names_field is not None:
            require_columns(parent, params[names_field], names_field)

    return check
