"""The order of the test modules (`tests.scheduling`): waiting for a build last, longest first."""

from __future__ import annotations

from types import SimpleNamespace

from tests.scheduling import SECONDS_KEY, ModuleTimes, Plan, order


def _item(nodeid: str, *fixtures: str, slow: bool = False) -> SimpleNamespace:
    marker = object() if slow else None
    return SimpleNamespace(
        nodeid=nodeid,
        fixturenames=["tmp_path", *fixtures],
        get_closest_marker=lambda name: marker if name == "slow" else None,
    )


def _ordered(items: list[SimpleNamespace], plan: Plan) -> list[str]:
    order(items, plan)  # type: ignore[arg-type]
    return [item.nodeid for item in items]


ITEMS = (
    ("tests/a.py::one", ("tiny_model",)),
    ("tests/a.py::two", ()),
    ("tests/b.py::one", ("detector", "mosaic_detector")),
    ("tests/c.py::one", ()),
    ("tests/d.py::one", ("detector",)),
    ("tests/d.py::two", ()),
    ("tests/e.py::one", ()),
)


def test_modules_waiting_for_a_build_go_last_by_the_last_build_they_wait_for() -> None:
    items = [_item(nodeid, *fixtures) for nodeid, fixtures in ITEMS]
    plan = Plan(unfinished=("detector", "mosaic_detector", "tiny_model"))
    assert _ordered(items, plan) == [
        "tests/c.py::one",  # waits for nothing: first, in their order
        "tests/e.py::one",
        "tests/d.py::one",  # the detector is made first; its other test goes with it
        "tests/d.py::two",
        "tests/b.py::one",  # waits for the mosaic detector, made second
        "tests/a.py::one",  # waits for the tiny model, made third
        "tests/a.py::two",
    ]


def test_with_every_build_made_the_longest_module_goes_first() -> None:
    items = [_item(nodeid, *fixtures) for nodeid, fixtures in ITEMS]
    plan = Plan(seconds={"tests/e.py": 40.0, "tests/b.py": 90.0, "tests/d.py": 5.0})
    assert _ordered(items, plan)[:4] == [
        "tests/b.py::one",
        "tests/e.py::one",
        "tests/d.py::one",
        "tests/d.py::two",
    ]


def test_a_module_never_timed_counts_as_long_when_a_test_is_marked_slow() -> None:
    items = [_item("tests/a.py::one"), _item("tests/b.py::one", slow=True)]
    assert _ordered(items, Plan(seconds={"tests/a.py": 30.0})) == [
        "tests/b.py::one",  # slow, never timed: counted as 60 s
        "tests/a.py::one",
    ]


def test_the_plan_travels_to_the_workers_whole() -> None:
    plan = Plan(unfinished=("detector",), seconds={"tests/a.py": 1.5})
    assert Plan.from_json(plan.to_json()) == plan


def test_module_times_add_every_phase_and_keep_the_modules_not_run() -> None:
    cache = SimpleNamespace(data={SECONDS_KEY: {"tests/old.py": 7.0, "tests/a.py": 99.0}})
    cache.get = lambda key, default: cache.data.get(key, default)
    cache.set = lambda key, value: cache.data.__setitem__(key, value)
    times = ModuleTimes(SimpleNamespace(cache=cache))  # type: ignore[arg-type]
    for nodeid, duration in (("tests/a.py::one", 1.25), ("tests/a.py::one", 0.5), ("x.py::t", 2)):
        times.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))  # type: ignore[arg-type]
    times.pytest_sessionfinish()
    assert cache.data[SECONDS_KEY] == {"tests/old.py": 7.0, "tests/a.py": 1.75, "x.py": 2}
