"""The class table: 17 base classes, 3 weather modes, 80 model slots.

The base classes live in ``classes.json`` (fields ``Id``, ``Name``, ``ShortName``, ``Color``).
Each weather mode adds an offset to the base id (Norm +0, Wint +20, Night +40), so class 21 is
Truck in winter. Models are trained with 80 slots; slots that no (class, mode) pair uses are
named ``Class-N``.

The table is a setting (``classes``, ``AZAION_CLASSES``: a ``classes.json`` of the same fields;
`ClassTable.load`), the platform's table the default. A user's own classes either come in such a
file or are added by name (`ClassTable.with_classes`, what ``azaion-convert --map Tree=Tree``
does when the table has no ``Tree``), and their names go into ``data.yaml``, the report, the
model's metadata and inference output.

Example:
    >>> table = ClassTable.default()
    >>> table[21].name
    'Truck(Wint)'
    >>> table[57].name
    'Class-57'
    >>> len(table.names)
    80
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from pathlib import Path

from azaion_training.errors import ConfigError

NUM_SLOTS = 80
"""Number of class slots every model is trained with (``nc`` in ``data.yaml``)."""


class WeatherMode(IntEnum):
    """Weather modes; the value is the offset added to a base class id."""

    NORM = 0
    WINT = 20
    NIGHT = 40

    @property
    def label(self) -> str:
        """The mode as written in class names: ``Norm``, ``Wint`` or ``Night``."""
        return self.name.capitalize()


@dataclass(frozen=True)
class ClassInfo:
    """One of the 80 slots.

    Attributes:
        id: the slot, 0..79.
        name: ``Truck``, ``Truck(Wint)``, ... or ``Class-N`` for an unused slot.
        short_name: a short name for drawing (``Truck``, ``Truck(W)``, ``C57``).
        color: ``#rrggbb``; weather modes share their base class's colour.
        base_id: the base class id (0..16), or ``None`` for an unused slot.
        mode: the weather mode, or ``None`` for an unused slot.
    """

    id: int
    name: str
    short_name: str
    color: str
    base_id: int | None
    mode: WeatherMode | None

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an ``(r, g, b)`` tuple of 0..255."""
        value = int(self.color[1:], 16)
        return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF

    @property
    def bgr(self) -> tuple[int, int, int]:
        """The colour as OpenCV's ``(b, g, r)`` tuple."""
        r, g, b = self.rgb
        return b, g, r


@dataclass(frozen=True)
class BaseClass:
    """One entry of ``classes.json``."""

    id: int
    name: str
    short_name: str
    color: str


_UNUSED_COLOR = "#808080"

_NEW_COLORS = (
    "#000075", "#ffd8b1", "#a9a9a9", "#00ff7f", "#ff1493", "#1e90ff", "#ff8c00", "#7cfc00",
    "#8b4513", "#00ced1", "#dc143c", "#9400d3", "#ffff00", "#00bfff", "#ff69b4", "#2e8b57",
    "#b8860b", "#4b0082", "#ff4500", "#708090",
)  # fmt: skip
"""Colours for classes added by name, distinct from the platform's 17 (Sasha Trubetskoy's list)
and from each other; one not used yet by the table is taken."""


class ClassTable(Sequence[ClassInfo]):
    """The 80 class slots built from the base classes and the weather modes."""

    def __init__(self, base_classes: Sequence[BaseClass]) -> None:
        _check_base_classes(base_classes)
        self.base_classes: tuple[BaseClass, ...] = tuple(base_classes)
        self._slots: tuple[ClassInfo, ...] = tuple(_build_slots(self.base_classes))

    @classmethod
    def default(cls) -> ClassTable:
        """The table of the ``classes.json`` shipped with the package."""
        text = resources.files("azaion_training").joinpath("classes.json").read_text("utf-8")
        return cls.from_json_text(text, source="classes.json")

    @classmethod
    def from_json(cls, path: Path) -> ClassTable:
        """Reads a ``classes.json``-style file.

        Raises:
            ConfigError: the file cannot be read or is not a valid class list.
        """
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"class table {path} cannot be read: {exc}") from exc
        return cls.from_json_text(text, source=str(path))

    @classmethod
    def load(cls, path: Path | None) -> ClassTable:
        """The table of the ``classes`` setting: the file at ``path``, else the platform's."""
        return cls.default() if path is None else cls.from_json(path)

    def with_classes(self, names: Sequence[str]) -> ClassTable:
        """This table with base classes named ``names`` added after the last (names it already
        has, in any case, are left as they are).

        Raises:
            ConfigError: more than 20 base classes would result (the weather offsets).
        """
        base = list(self.base_classes)
        known = {c.name.lower() for c in base}
        used = {c.color for c in base}
        for name in names:
            if name.strip().lower() in known:
                continue
            color = next((c for c in _NEW_COLORS if c not in used), _UNUSED_COLOR)
            used.add(color)
            known.add(name.strip().lower())
            base.append(BaseClass(len(base), name.strip(), name.strip()[:10], color))
        return self if len(base) == len(self.base_classes) else ClassTable(base)

    def to_json(self) -> str:
        """The base classes as ``classes.json`` text (what `from_json_text` reads)."""
        rows = [
            {"Id": c.id, "Name": c.name, "ShortName": c.short_name, "Color": c.color}
            for c in self.base_classes
        ]
        return json.dumps(rows, indent=2) + "\n"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassTable) and self.base_classes == other.base_classes

    def __hash__(self) -> int:
        return hash(self.base_classes)

    @classmethod
    def from_json_text(cls, text: str, *, source: str = "<json>") -> ClassTable:
        """Parses ``classes.json`` text: a list of ``{Id, Name, ShortName, Color}`` objects."""
        try:
            rows = json.loads(text)
            base = [
                BaseClass(
                    id=int(row["Id"]),
                    name=str(row["Name"]),
                    short_name=str(row.get("ShortName") or row["Name"]),
                    color=str(row["Color"]).lower(),
                )
                for row in rows
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{source}: not a valid class list: {exc}") from exc
        return cls(base)

    @property
    def names(self) -> list[str]:
        """The 80 slot names in id order (what ``data.yaml`` and the model metadata hold)."""
        return [info.name for info in self._slots]

    def __getitem__(self, class_id: int) -> ClassInfo:  # type: ignore[override]
        if not isinstance(class_id, int) or not 0 <= class_id < NUM_SLOTS:
            raise KeyError(f"class id {class_id!r} is outside 0..{NUM_SLOTS - 1}")
        return self._slots[class_id]

    def __len__(self) -> int:
        return NUM_SLOTS

    def __iter__(self) -> Iterator[ClassInfo]:
        return iter(self._slots)

    def used(self) -> list[ClassInfo]:
        """The slots that name a real (class, mode) pair: 17 x 3 = 51 with the default table."""
        return [info for info in self._slots if info.base_id is not None]

    def id_of(self, name: str) -> int:
        """The slot id of a name such as ``Truck`` or ``Truck(Wint)`` (case-insensitive)."""
        wanted = name.strip().lower()
        for info in self._slots:
            if info.name.lower() == wanted:
                return info.id
        raise KeyError(f"unknown class name {name!r}")


def _check_base_classes(base_classes: Sequence[BaseClass]) -> None:
    if not base_classes:
        raise ConfigError("the class list is empty")
    ids = [c.id for c in base_classes]
    if ids != list(range(len(ids))):
        raise ConfigError(f"class ids must be 0..{len(ids) - 1} in order, got {ids}")
    if len(ids) > WeatherMode.WINT:
        raise ConfigError(f"at most {int(WeatherMode.WINT)} base classes fit the weather offsets")
    for c in base_classes:
        if len(c.color) != 7 or not c.color.startswith("#"):
            raise ConfigError(f"class {c.name}: colour {c.color!r} is not #rrggbb")
        int(c.color[1:], 16)


def _build_slots(base_classes: Sequence[BaseClass]) -> Iterator[ClassInfo]:
    by_id: dict[int, ClassInfo] = {}
    for mode in WeatherMode:
        for base in base_classes:
            slot = base.id + mode.value
            suffix = "" if mode is WeatherMode.NORM else f"({mode.label})"
            short = "" if mode is WeatherMode.NORM else f"({mode.label[0]})"
            by_id[slot] = ClassInfo(
                id=slot,
                name=base.name + suffix,
                short_name=base.short_name + short,
                color=base.color,
                base_id=base.id,
                mode=mode,
            )
    for slot in range(NUM_SLOTS):
        yield by_id.get(
            slot,
            ClassInfo(
                id=slot,
                name=f"Class-{slot}",
                short_name=f"C{slot}",
                color=_UNUSED_COLOR,
                base_id=None,
                mode=None,
            ),
        )
