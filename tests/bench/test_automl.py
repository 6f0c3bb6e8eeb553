"""The pieces of bench/automl.py that decide what it measures and what its table says.

The bench itself runs AutoML for minutes and is run by hand (docs/benchmarks.md); these
check, without running a pipeline, that its step bodies have the shape the step types
declare, that the server and the direct side get the same references, and that the table's
added seconds and ratio verdicts are what the goal says.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

from bench.automl import (
    FULL,
    QUICK,
    Pipeline,
    Samples,
    pipelines,
    proc_mb,
    references,
    resolve,
    rows_of,
    step_body,
)

PIPELINES = [*pipelines(FULL).values()]


def declared_example(route: str) -> dict[str, Any]:
    """The example body the step type `route` declares (services/.../steps/{step})."""
    step = route.partition("/")[0]
    module = importlib.import_module(f"learning_orchestra.steps.{step}")
    (declared,) = [t for t in module.STEP_TYPES if t.type == route]
    return dict(declared.example)


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.key)
def test_each_step_body_has_the_fields_of_its_declared_example(pipeline: Pipeline) -> None:
    for stage in pipeline.stages:
        body = step_body(pipeline, stage, "r0")
        example = declared_example(stage.route)
        assert sorted(body) == sorted(example), stage.route
        for field in ("modulePath", "class", "method"):
            if field in example:
                assert body[field] == example[field], (stage.route, field)


def test_references_name_the_round_s_steps_and_keep_dataset_names() -> None:
    autokeras = pipelines(QUICK)["autokeras"]
    train = step_body(autokeras, autokeras.stages[2], "r1")
    assert train["modelName"] == train["parentName"] == "autokeras_r1_model"
    assert train["methodParameters"]["x"] == "$autokeras_r1_load.x_train"
    load = step_body(autokeras, autokeras.stages[0], "r1")
    assert load["functionParameters"] == {"data": "$mnist", "images": 1000}
    pycaret = pipelines(QUICK)["pycaret"]
    predict = step_body(pycaret, pycaret.stages[-1], "r0")
    assert predict["methodParameters"] == {"estimator": "$pycaret_r0_tune", "data": "$titanic_test"}
    assert predict["parentName"] == "pycaret_r0_model"


def test_the_direct_side_resolves_the_same_references_to_values() -> None:
    values: dict[str, Any] = {"load": {"x_test": [1, 2]}, "mnist": b"npz"}
    resolved = resolve(
        {"x": "$load.x_test", "f": ["$mnist", 3], "s": "plain"},
        lambda name, key: values[name][key] if key else values[name],
    )
    assert resolved == {"x": [1, 2], "f": [b"npz", 3], "s": "plain"}


def test_the_warm_up_runs_only_the_stages_that_need_no_earlier_stage() -> None:
    for pipeline in PIPELINES:
        alone = [s.name for s in pipeline.stages if references(s) <= set(pipeline.datasets)]
        assert alone == {"pycaret": ["model"], "autokeras": ["load", "model"]}[pipeline.key]


def test_full_budgets_compare_the_default_list_and_quick_ones_a_short_list() -> None:
    full, quick = pipelines(FULL)["pycaret"], pipelines(QUICK)["pycaret"]
    assert "include" not in full.stages[1].parameters
    assert quick.stages[1].parameters["include"] == ["lr", "dt"]


def samples(seconds: dict[str, list[float]], peaks: list[float]) -> Samples:
    return Samples(seconds=seconds, peak_mb=peaks, whole_mb=[mb + 100 for mb in peaks])


@pytest.mark.parametrize(("direct", "judged"), [(30.0, False), (60.0, True)])
def test_the_total_s_ratio_is_judged_when_the_direct_run_takes_a_minute(
    direct: float, judged: bool
) -> None:
    pipeline = pipelines(QUICK)["autokeras"]
    stages = [s.name for s in pipeline.stages]
    server = samples({s: [direct / 5 + 0.2] * 3 for s in stages}, [900.0] * 3)
    alone = samples({s: [direct / 5] * 3 for s in stages}, [850.0] * 3)
    rows = {row.what: row for row in rows_of(pipeline, server, alone)}
    assert len(rows) == 2 * len(stages) + 6
    total = rows["total: server vs direct"]
    assert total.ratio == pytest.approx((direct + 1.0) / direct)
    assert rows["total: added by the server"].values == pytest.approx([1.0] * 3)
    assert (
        rows["peak RSS of the processes running the stages: added by the server"].values
        == [50.0] * 3
    )
    assert (
        rows["peak memory of all processes (PSS summed): added by the server"].values == [50.0] * 3
    )
    if judged:  # 61 / 60 = 1.017: within the goal
        assert total.goal == "≤ 1.02x" and total.met is True
    else:
        assert total.goal == "" and total.met is None


def test_totals_are_per_round_sums_and_proc_figures_are_read() -> None:
    assert samples({"a": [1.0, 2.0], "b": [3.0, 4.0]}, []).totals() == [4.0, 6.0]
    peak, pss = (
        proc_mb(os.getpid(), "status", "VmHWM:"),
        proc_mb(os.getpid(), "smaps_rollup", "Pss:"),
    )
    assert peak is not None and pss is not None and 10 < pss <= peak
    assert proc_mb(os.getpid(), "status", "NoSuchField:") is None
