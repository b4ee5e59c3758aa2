"""Which of our class slots a foreign class name becomes.

A name is looked up case-insensitively, in this order:

1. the skip list: the box is left out (reported as skipped by the map);
2. the explicit map (``--map Name=ID`` or ``--map Name=OurName``, over the defaults); a target
   name the class table does not have is added to it as a new class (`ClassTable.with_classes`:
   ``--map Tree=Tree`` on the platform's table makes class 17 ``Tree``);
3. our own class names (``Truck``, ``Vehicle``, ``Truck(Wint)``, ... from the `ClassTable`);
4. otherwise the name is unknown: the box is skipped and reported, or the conversion stops,
   as the ``convert.unknown_classes`` setting says.

The default map is the original's (KEEP): Truck -> 1, Car -> 2, Taxi -> 2, Motorcycle skipped.

Example:
    >>> names = ClassMap.default()
    >>> names.resolve("Taxi"), names.resolve("truck(wint)"), names.resolve("Motorcycle").name
    (2, 21, 'SKIPPED_CLASS')
    >>> names.with_overrides(mapping={"Motorcycle": 11}).resolve("motorcycle")
    11
    >>> trees = class_map_from_options(["Tree=Tree,Alive=Tree,Dead=Snag"])
    >>> trees.resolve("alive"), trees.resolve("dead"), trees.added, trees.table[18].name
    (17, 18, ('Tree', 'Snag'), 'Snag')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from azaion_training.classes import NUM_SLOTS, ClassTable
from azaion_training.convert.report import SkipReason
from azaion_training.errors import ConfigError

DEFAULT_MAP: Mapping[str, int] = {"truck": 1, "car": 2, "taxi": 2}
"""The original's VOC class map (KEEP)."""

DEFAULT_SKIP: frozenset[str] = frozenset({"motorcycle"})
"""Names the original left out (KEEP)."""


def _key(name: str) -> str:
    return name.strip().lower()


@dataclass(frozen=True)
class ClassMap:
    """Foreign class name -> class slot (0..79), or skipped.

    Attributes:
        ids: lower-cased name -> slot.
        skipped: lower-cased names whose boxes are left out.
        table: our class table; its names map to their own slots.
    """

    ids: Mapping[str, int]
    skipped: frozenset[str]
    table: ClassTable
    added: tuple[str, ...] = ()
    """Class names the map added to the table (``--map Tree=Tree``)."""

    def __post_init__(self) -> None:
        for name, slot in self.ids.items():
            if not isinstance(slot, int) or not 0 <= slot < NUM_SLOTS:
                raise ConfigError(
                    f"class map: {name!r} -> {slot!r} is not a slot 0..{NUM_SLOTS - 1}"
                )

    @classmethod
    def default(cls, table: ClassTable | None = None) -> ClassMap:
        """The KEEP default: Truck -> 1, Car -> 2, Taxi -> 2, Motorcycle skipped."""
        return cls(ids=dict(DEFAULT_MAP), skipped=DEFAULT_SKIP, table=table or ClassTable.default())

    def with_overrides(
        self, *, mapping: Mapping[str, int] | None = None, skip: Iterable[str] = ()
    ) -> ClassMap:
        """A map with ``mapping`` and ``skip`` laid over this one.

        A name given in ``mapping`` is no longer skipped; a name given in ``skip`` is no longer
        mapped.

        Raises:
            ConfigError: a name is in both ``mapping`` and ``skip``, or a slot is out of range.
        """
        mapping = {_key(name): slot for name, slot in (mapping or {}).items()}
        skip_keys = {_key(name) for name in skip}
        both = sorted(set(mapping) & skip_keys)
        if both:
            raise ConfigError(f"class map: {', '.join(both)} both mapped and skipped")
        ids = {k: v for k, v in self.ids.items() if k not in skip_keys} | mapping
        skipped = (self.skipped - set(mapping)) | skip_keys
        return ClassMap(ids=ids, skipped=frozenset(skipped), table=self.table, added=self.added)

    def resolve(self, name: str) -> int | SkipReason:
        """The slot of ``name``, or `SkipReason.SKIPPED_CLASS` / `SkipReason.UNKNOWN_CLASS`."""
        key = _key(name)
        if key in self.skipped:
            return SkipReason.SKIPPED_CLASS
        if key in self.ids:
            return self.ids[key]
        try:
            return self.table.id_of(key)
        except KeyError:
            return SkipReason.UNKNOWN_CLASS


def parse_map_option(text: str) -> dict[str, int | str]:
    """Parses ``--map`` text: ``Name=ID,Other Name=OurName`` (spaces inside names are kept); a
    target is a class id (an integer) or a class name.

    Raises:
        ConfigError: an entry is not ``NAME=ID`` or ``NAME=NAME``.
    """
    mapping: dict[str, int | str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.rpartition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"--map entry {entry!r} is not NAME=ID or NAME=CLASSNAME")
        target = value.strip()
        mapping[name.strip()] = int(target) if target.lstrip("-").isdigit() else target
    return mapping


def parse_skip_option(text: str) -> list[str]:
    """Parses ``--skip`` text: ``Name,Other Name``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def class_map_from_options(
    maps: Iterable[str] = (), skips: Iterable[str] = (), *, table: ClassTable | None = None
) -> ClassMap:
    """The default map over ``table`` (the platform's when ``None``) with every
    ``--map NAME=ID|CLASSNAME,...`` and ``--skip NAME,...`` applied in order; class names the
    table does not have are added to it (`ClassMap.added`).

    Raises:
        ConfigError: an option does not parse (see `parse_map_option`), or too many classes.
    """
    targets: dict[str, int | str] = {}
    for text in maps:
        targets.update(parse_map_option(text))
    base = table or ClassTable.default()
    known = {info.name.lower() for info in base.used()}
    new: dict[str, str] = {}  # lower case -> the first spelling given
    for target in targets.values():
        if isinstance(target, str) and target.lower() not in known:
            new.setdefault(target.lower(), target)
    added = tuple(new.values())
    extended = base.with_classes(added)
    mapping = {
        name: target if isinstance(target, int) else extended.id_of(target)
        for name, target in targets.items()
    }
    skip = [name for text in skips for name in parse_skip_option(text)]
    start = ClassMap(ids=dict(DEFAULT_MAP), skipped=DEFAULT_SKIP, table=extended, added=added)
    return start.with_overrides(mapping=mapping, skip=skip)
