"""The benchmark's own pieces that decide what its table says (bench/harness.py, bench/bare.py).

`./run.sh bench --quick` runs the whole benchmark in CI; these check, without timing anything,
that the bare app's pages are the right rows (or the limit would be measured on a wrong
answer) and that the table's statistics and verdicts are what the goals say.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import bare
from bench.harness import Row, at_most, percentile, print_table, ratio_at_least


@pytest.mark.parametrize(
    ("start", "count"),
    [(0, 100), (6_990, 100), (29_950, 100), (49_950, 100), (49_990, 100), (50_000, 5), (0, 1)],
)
def test_bare_pages_are_the_rows_of_the_table_across_row_groups_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int, count: int
) -> None:
    table = pa.table({"i": range(50_000), "s": [f"x{i}" for i in range(50_000)]})
    pq.write_table(table.slice(0, 30_000), tmp_path / "part-0.parquet", row_group_size=7_000)
    pq.write_table(table.slice(30_000), tmp_path / "part-1.parquet", row_group_size=20_000)
    monkeypatch.setenv("BENCH_TABLE", str(tmp_path))
    assert bare.read_rows(start, count) == table.slice(start, count).to_pylist()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0  # few samples: p99 is the maximum


def test_goals_judge_the_median_the_p99_and_the_ratio() -> None:
    steady = Row("c", "w", "ms", [10.0] * 99 + [25.0], check=at_most(30, 3))
    spiky = Row("c", "w", "ms", [10.0] * 98 + [40.0, 40.0], check=at_most(30, 3))
    assert steady.met is True and spiky.met is False  # p99 40 > 3 x p50 10
    slow = Row("c", "w", "rows/s", [60.0], limit=[100.0], check=ratio_at_least(0.7))
    assert slow.ratio == pytest.approx(0.6) and slow.met is False
    assert Row("c", "w", "MB", [1.0], check=None).met is None


def test_the_table_has_a_line_per_row_with_every_column() -> None:
    lines: list[str] = []
    rows = [
        Row("per-step", "projection", "ms", [20.0, 30.0], "p50 ≤ 30 ms", [2.0], at_most(30), True),
        Row("ingest", "rows/s", "rows/s", [500_000.0], "≥ 0.7x limit", [1e6], ratio_at_least(0.7)),
    ]
    print_table(rows, lines.append)
    assert len(lines) == 4 and all(line.count("|") == 12 for line in lines)
    assert "| 25.0 |" in lines[2] and "| 12.50x |" in lines[2] and lines[2].endswith("| yes |")
    assert "500,000" in lines[3] and "0.50x" in lines[3] and lines[3].endswith("| **no** |")
