"""The order the suite's test modules run in: those that wait for an unfinished build
(`tests.builds`) last, and within that the longest first.

`scripts/test.sh` hands whole modules to the pytest-xdist workers in this order (``--dist
loadfile --no-loadscope-reorder``): the longest start first and the short ones fill in at the
end, and the builds are made while the modules that need none run. How long a module takes is
what it took in the last run that ran it (kept in pytest's cache under `SECONDS_KEY`); a module
never timed counts as long if it has a test marked slow. The process that runs the session (the
xdist controller) makes one `Plan` and hands it to its workers, so that every worker collects the
same order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from tests.builds import builds_root, finished, known_builds

SECONDS_KEY = "azaion/module-seconds"
UNTIMED_SLOW_S = 60.0
"""What a module never timed counts as when it has a test marked slow (others count as 0)."""


@dataclass(frozen=True)
class Plan:
    """What the order is made from.

    Attributes:
        unfinished: the fixtures of the builds that are not made yet, in the prebuild's order.
        seconds: how long each module (``tests/x/test_y.py``) took when it last ran.
    """

    unfinished: tuple[str, ...] = ()
    seconds: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, config: pytest.Config) -> Plan:
        if not hasattr(config, "cache"):  # -p no:cacheprovider: nothing kept, nothing known
            return cls()
        root = builds_root(config)
        unfinished = tuple(b.fixture for b in known_builds() if not finished(root, b))
        return cls(unfinished, config.cache.get(SECONDS_KEY, {}))

    def to_json(self) -> dict[str, object]:
        return {"unfinished": list(self.unfinished), "seconds": dict(self.seconds)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Plan:
        return cls(tuple(data["unfinished"]), dict(data["seconds"]))  # type: ignore[call-overload]


def module_of(nodeid: str) -> str:
    """The test module of a node id (``tests/x/test_y.py::test_z[1]`` -> ``tests/x/test_y.py``)."""
    return nodeid.split("::")[0]


def order(items: list[pytest.Item], plan: Plan) -> None:
    """Sorts ``items`` in place by `Plan`; a module's tests stay together and in their order."""
    rank = {fixture: index for index, fixture in enumerate(plan.unfinished)}
    waits: dict[str, int] = {}
    slow: set[str] = set()
    for item in items:
        module = module_of(item.nodeid)
        fixtures = getattr(item, "fixturenames", ())
        ranks = [rank[name] for name in fixtures if name in rank]
        waits[module] = max([waits.get(module, -1), *ranks])
        if item.get_closest_marker("slow") is not None:
            slow.add(module)
    first = {module: index for index, module in enumerate(waits)}

    def key(item: pytest.Item) -> tuple[int, float, int]:
        module = module_of(item.nodeid)
        seconds = plan.seconds.get(module, UNTIMED_SLOW_S if module in slow else 0.0)
        return waits[module], -seconds, first[module]

    items.sort(key=key)


class ModuleTimes:
    """A pytest plugin of the session's own process: adds up how long each module took (every
    phase of every test, the workers' reports included) and keeps it for the next run's order."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = module_of(report.nodeid)
        self.seconds[module] = self.seconds.get(module, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        """Records the modules timed here over what the cache held (the others are kept)."""
        if self.seconds and hasattr(self.config, "cache"):
            known = self.config.cache.get(SECONDS_KEY, {})
            rounded = {module: round(s, 2) for module, s in self.seconds.items()}
            self.config.cache.set(SECONDS_KEY, {**known, **rounded})
