"""Tables larger than a node: projection, dataType, histogram and summary on a Spark
standalone cluster (steps/spark_tables.py, docs/spark.md "Tables larger than a node").

A real master and worker (tests/spark_cluster.py) and a real server whose LO_SPARK_MASTER is
that master, with LO_SPARK_MIN_ROWS small and the driver's and executors' memory capped at
512 MB (about the least Spark accepts), below the in-memory size of the generated table, which
a Spark projection splits over several Parquet files. On a small table, every result equals
the pyarrow path's (the shared `lo_server`, without a master): exactly, but for summary's
mean and std (SUM_TOLERANCE) and quartiles (within QUARTILE_ERROR of the rank).

Every Spark run starts two JVMs (its driver, its executor), which costs more CPU than its
work on these tables: each run takes one of the worker's two cores, and the small table's steps
(`small_steps`) run while the large table's test does, so the two fill both cores.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from learning_orchestra.steps.spark_tables import QUARTILE_ERROR
from tests.conftest import BASE, ServerProcess, data_file
from tests.spark_cluster import SparkCluster, spark_cluster  # noqa: F401 (a fixture)
from tests.steps.rest import ended, finished, post, unique

CSV = f"{BASE}/dataset/csv"
PROJECTION = f"{BASE}/transform/projection"
DATA_TYPE = f"{BASE}/transform/dataType"
HISTOGRAM = f"{BASE}/explore/histogram"
SUMMARY = f"{BASE}/explore/summary"

#: LO_SPARK_DRIVER_MEMORY_MB and LO_SPARK_EXECUTOR_MEMORY_MB of the server on Spark.
SPARK_MEMORY_MB = 512
#: Spark options of the runs (PYSPARK_SUBMIT_ARGS, as an operator may give them): executors'
#: JVMs as the driver's (toolkits/spark.py), since a quick start matters more than peak speed
#: in these runs of seconds, and one core each, so that two runs proceed at once.
SUBMIT_ARGS = (
    "--conf 'spark.executor.extraJavaOptions=-XX:+UseSerialGC -XX:TieredStopAtLevel=1' "
    "--conf spark.cores.max=1 pyspark-shell"
)
#: Relative tolerance of summary's mean and std (sums in another order).
SUM_TOLERANCE = 1e-9

# The generated table: ROWS rows of an id, a small integer, numbers as text (one blank early,
# so the column is text, and one value that is not a number late, in the last part) and a
# long word of WORD_LENGTH characters, one of WORDS.
ROWS = 1_100_000
WORDS = 5000
WORD_LENGTH = 500
BLANK_ROW, BAD_ROW = 3, ROWS - 7  # 0-based
BAD_VALUE = "12a"  # (not "n/a": the CSV reader takes that for a missing value)


def word(index: int) -> str:
    return f"w{index:05d}".ljust(WORD_LENGTH, "x")


WORD_TEXTS = [word(index) for index in range(WORDS)]


def big_row(i: int) -> tuple[int, int, str, str]:
    text = " " if i == BLANK_ROW else BAD_VALUE if i == BAD_ROW else str(i % 1000)
    return i, i % 7, text, WORD_TEXTS[i * 7919 % WORDS]


def write_big_csv(path: Path) -> int:
    """Write the generated table as CSV; its size in memory (Arrow: 8 bytes per integer,
    4 per string offset, the strings' bytes)."""
    size = 0
    with path.open("w") as handle:
        handle.write("id,k,t,s\n")
        for start in range(0, ROWS, 100_000):
            block = [big_row(i) for i in range(start, min(start + 100_000, ROWS))]
            handle.write("".join([f"{i},{k},{t},{s}\n" for i, k, t, s in block]))
            size += sum(8 + 8 + 4 + len(t) + 4 + WORD_LENGTH for _, _, t, _ in block)
    return size


def small_csv() -> str:
    """The Titanic training set with three more columns: a boolean, numbers as text (with
    blanks and signs) and floats whose text pyarrow and Java write differently."""
    tiny = ["1e-07", "1e+20", "0.30000000000000004", "2.5", "123456789012.0", "-3.75"]
    text = [" 12 ", "+3", " ", "4.5", "1e3", "-7", ".5", ""]
    with data_file("titanic/train.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*rows[0], "Flag", "Text", "Tiny"])
    for i, row in enumerate(rows[1:]):
        writer.writerow([*row, "true" if i % 3 else "false", text[i % 8], tiny[i % 6]])
    return out.getvalue()


@pytest.fixture(scope="module")
def spark_server(
    spark_cluster: SparkCluster,  # noqa: F811 (the fixture)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A server whose big tables go to `spark_cluster`, with Spark's memory capped, and its
    runs tuned for short runs on few cores (SUBMIT_ARGS)."""
    env = {
        "LO_SPARK_MASTER": spark_cluster.url,
        "LO_SPARK_MIN_ROWS": "100",
        "LO_SPARK_DRIVER_MEMORY_MB": str(SPARK_MEMORY_MB),
        "LO_SPARK_EXECUTOR_MEMORY_MB": str(SPARK_MEMORY_MB),
        "PYSPARK_SUBMIT_ARGS": SUBMIT_ARGS,
    }
    server = ServerProcess(tmp_path_factory.mktemp("spark-server") / "data", env)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def upload(client: httpx.Client, name: str, file: Any) -> dict[str, Any]:
    response = client.post(CSV, data={"datasetName": name}, files={"file": (f"{name}.csv", file)})
    assert response.status_code == 201, response.text
    return finished(client, CSV, name)


def cast(client: httpx.Client, name: str, types: dict[str, str]) -> dict[str, Any]:
    """PATCH /transform/dataType; the table's metadata once the cast ended."""
    response = client.patch(DATA_TYPE, json={"inputDatasetName": name, "types": types})
    assert response.status_code == 200, response.text
    return ended(client, name)


def table(client: httpx.Client, route: str, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of table step `name`: all of them, or a page (`skip`, `limit`) without metadata."""
    if params:
        response = client.get(f"{route}/{name}", params={**params, "skip": params["skip"] + 1})
    else:
        response = client.get(f"{route}/{name}/result", params={"format": "json"})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["result"]
    return found


def parts(client: httpx.Client, route: str, name: str) -> list[str]:
    """The files of table step `name`'s output, checking there is nothing but its parts."""
    response = client.get(f"{route}/{name}/files")
    assert response.status_code == 200, response.text
    files = sorted(f["filename"] for f in response.json()["result"])
    assert all(f.startswith("table/part-") and f.endswith(".parquet") for f in files), files
    return files


def on_spark(meta: dict[str, Any], key: str = "engine") -> dict[str, Any]:
    assert meta["status"] == "finished", meta["exception"]
    assert meta[key] == "spark", meta
    return meta


# -- a table larger than Spark's memory --------------------------------------------------------
def test_table_larger_than_spark_memory(
    spark_server: str, small_steps: list[Future[dict[str, Any]]], tmp_path: Path
) -> None:
    # (`small_steps` runs meanwhile: see the module)
    source = tmp_path / "big.csv"
    in_memory = write_big_csv(source)
    print(f"\ngenerated table: {in_memory / 2**20:.0f} MiB in memory; driver and executor "
          f"memory: {SPARK_MEMORY_MB} MiB each")  # fmt: skip
    assert in_memory > SPARK_MEMORY_MB * 2**20
    with httpx.Client(base_url=spark_server, timeout=300) as client:
        big = unique("big")
        with source.open("rb") as handle:
            assert upload(client, big, handle)["rows"] == ROWS
        source.unlink()

        # projection: the table read by Spark, written as several files in row order
        split = unique("split")
        body = {"inputDatasetName": big, "outputDatasetName": split, "names": ["s", "id", "k", "t"]}
        post(client, PROJECTION, body, split)
        meta = on_spark(finished(client, PROJECTION, split))
        assert meta["rows"] == ROWS and meta["fields"] == ["s", "id", "k", "t"]
        assert meta["types"] == {"s": "string", "id": "integer", "k": "integer", "t": "string"}
        assert len(parts(client, PROJECTION, split)) >= 2
        for skip in (0, ROWS // 2 - 1, ROWS - 3):
            assert table(client, PROJECTION, split, skip=skip, limit=3) == [
                dict(zip(("id", "k", "t", "s"), big_row(i), strict=True))
                for i in range(skip, skip + 3)
            ]

        # histogram and summary of the parts, at once
        counts, described = unique("counts"), unique("described")
        post(client, HISTOGRAM, {"inputDatasetName": split, "outputDatasetName": counts,
                                 "names": ["k", "s"]}, counts)  # fmt: skip
        post(client, SUMMARY, {"inputDatasetName": split, "outputDatasetName": described},
             described)  # fmt: skip
        on_spark(finished(client, HISTOGRAM, counts))
        on_spark(finished(client, SUMMARY, described))
        ks = Counter(i % 7 for i in range(ROWS))
        words = Counter(i * 7919 % WORDS for i in range(ROWS))
        assert table(client, HISTOGRAM, counts) == [
            *({"field": "k", "value": str(k), "count": ks[k]} for k in sorted(ks)),
            *({"field": "s", "value": word(w), "count": words[w]} for w in sorted(words)),
        ]
        by_field = {row["field"]: row for row in table(client, SUMMARY, described)}
        ids = by_field["id"]
        assert (ids["count"], ids["missing"], ids["unique"]) == (ROWS, 0, ROWS)
        assert (ids["min"], ids["max"]) == (0, ROWS - 1)
        assert ids["mean"] == pytest.approx((ROWS - 1) / 2, rel=SUM_TOLERANCE)
        assert ids["std"] == pytest.approx(math.sqrt(ROWS * (ROWS + 1) / 12), rel=SUM_TOLERANCE)
        for q, key in ((0.25, "25%"), (0.5, "50%"), (0.75, "75%")):
            assert abs(ids[key] - q * ROWS) <= QUARTILE_ERROR * ROWS + 1, (key, ids[key])
        top, freq = min(words.items(), key=lambda item: (-item[1], item[0]))
        assert (by_field["s"]["top"], by_field["s"]["freq"]) == (word(top), freq)
        assert by_field["s"]["unique"] == WORDS
        assert by_field["t"]["unique"] == 1000 + 2  # and " ", BAD_VALUE

        # dataType: a value that is not a number, in the last part, named by its row
        meta = cast(client, split, {"t": "number"})
        assert meta["status"] == "failed" and meta["exception"] == (
            f"cannot cast column 't' to number: row {BAD_ROW + 1} holds {BAD_VALUE!r}, which "
            "is not a number; the table is unchanged"
        )
        assert meta["types"]["t"] == "string" and "castTypes" not in meta
        # ... and a cast that is written, in parts, rows in order
        meta = on_spark(cast(client, split, {"k": "string", "id": "number"}), "castEngine")
        assert meta["engine"] == "spark" and meta["rows"] == ROWS
        assert meta["types"] == {"s": "string", "id": "integer", "k": "string", "t": "string"}
        assert len(parts(client, PROJECTION, split)) >= 2
        assert table(client, PROJECTION, split, skip=ROWS - 2, limit=2) == [
            {"s": word(i * 7919 % WORDS), "id": i, "k": str(i % 7), "t": str(i % 1000)}
            for i in (ROWS - 2, ROWS - 1)
        ]


# -- the same results as pyarrow's -------------------------------------------------------------
def run_small_steps(url: str, text: str) -> dict[str, Any]:
    """The small table's steps on the server at `url`: every output's metadata and rows."""
    found: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=300) as client:
        small = unique("small")
        found["small"] = upload(client, small, text.encode())
        kept, counts, described = unique("kept"), unique("counts"), unique("described")
        names = ["Text", "Name", "Age", "Pclass", "Flag", "Fare", "Tiny", "Cabin", "Survived"]
        post(client, PROJECTION, {"inputDatasetName": small, "outputDatasetName": kept,
                                  "names": names}, kept)  # fmt: skip
        post(client, HISTOGRAM, {"inputDatasetName": small, "outputDatasetName": counts,
                                 "names": ["Sex", "Pclass", "Age", "Embarked", "Flag"]},
             counts)  # fmt: skip
        post(client, SUMMARY, {"inputDatasetName": small, "outputDatasetName": described},
             described)  # fmt: skip
        for key, route, name in (
            ("projection", PROJECTION, kept),
            ("histogram", HISTOGRAM, counts),
            ("summary", SUMMARY, described),
        ):
            found[key] = (finished(client, route, name), table(client, route, name))
        found["rows"] = table(client, CSV, small)
        types = {"Age": "string", "Pclass": "string", "Flag": "string", "Tiny": "string",
                 "Text": "number", "Fare": "number"}  # fmt: skip
        found["cast"] = (cast(client, kept, types), table(client, PROJECTION, kept))
        files = client.get(f"{PROJECTION}/{kept}/files")
        found["files"] = sorted(f["filename"] for f in files.json()["result"])
    return found


def same_table(spark: tuple[dict[str, Any], Any], arrow: tuple[dict[str, Any], Any]) -> None:
    for key in ("fields", "types", "rows"):
        assert spark[0][key] == arrow[0][key], key
    assert spark[1] == arrow[1]


@pytest.fixture(scope="module")
def small_steps(spark_server: str, lo_server: str) -> Iterator[list[Future[dict[str, Any]]]]:
    """The small table's steps on Spark and on pyarrow, under way in threads (their results:
    `run_small_steps`)."""
    text = small_csv()
    with ThreadPoolExecutor(2) as pool:
        yield [pool.submit(run_small_steps, url, text) for url in (spark_server, lo_server)]


def test_small_table_results_equal_pyarrow(small_steps: list[Future[dict[str, Any]]]) -> None:
    spark, arrow = (future.result() for future in small_steps)
    assert spark["small"]["types"]["Text"] == "string"  # numbers as text: the premise
    for key in ("projection", "histogram", "summary"):
        on_spark(spark[key][0])
        assert arrow[key][0]["engine"] == "pyarrow"
    same_table(spark["projection"], arrow["projection"])
    same_table(spark["histogram"], arrow["histogram"])

    on_spark(spark["cast"][0], "castEngine")
    assert arrow["cast"][0]["castEngine"] == "pyarrow"
    same_table(spark["cast"], arrow["cast"])
    assert spark["files"] == ["table/part-00000.parquet"] and arrow["files"] == ["table.parquet"]
    floats = {row["Tiny"] for row in spark["cast"][1]}
    assert floats == {"1e-7", "1e+20", "0.30000000000000004", "2.5", "1.23456789012e+11", "-3.75"}

    spark_meta, spark_rows = spark["summary"]
    arrow_meta, arrow_rows = arrow["summary"]
    for key in ("fields", "types", "rows"):
        assert spark_meta[key] == arrow_meta[key], key
    for got, want in zip(spark_rows, arrow_rows, strict=True):
        column = sorted(r[got["field"]] for r in spark["rows"] if r[got["field"]] is not None)
        for key, value in want.items():
            if key in ("mean", "std") and value is not None:
                assert got[key] == pytest.approx(value, rel=SUM_TOLERANCE), (got["field"], key)
            elif key in ("25%", "50%", "75%") and value is not None:
                assert within_rank(got[key], column, float(key[:-1]) / 100), (got, want)
            else:
                assert got[key] == value, (got["field"], key)


def within_rank(value: float, column: list[Any], q: float) -> bool:
    """Whether `value` is one of the sorted `column`'s values whose rank is within
    QUARTILE_ERROR of the count of quantile `q`'s."""
    n = len(column)
    low = max(0, math.floor(q * n - QUARTILE_ERROR * n) - 1)
    high = min(n - 1, math.ceil(q * n + QUARTILE_ERROR * n))
    return value in column[low : high + 1]
