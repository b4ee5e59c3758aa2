from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import pytest

from azaion_training.classes import ClassTable
from azaion_training.convert import ClassMap, SkipReason, parse_map_option, parse_skip_option
from azaion_training.convert.classmap import class_map_from_options
from azaion_training.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Truck", 1),  # KEEP default map
        ("car", 2),  # KEEP, case-insensitive
        ("TAXI", 2),  # KEEP
        ("Motorcycle", SkipReason.SKIPPED_CLASS),  # KEEP: skipped
        (" Vehicle ", 2),  # our own class name, spaces trimmed
        ("ArmorVehicle", 0),  # our own class name
        ("Truck(Wint)", 21),  # our own name with a weather mode
        ("Class-57", 57),  # an unused slot's name is still a slot
        ("Bus", SkipReason.UNKNOWN_CLASS),  # unknown
        ("", SkipReason.UNKNOWN_CLASS),  # empty name
    ],
)
def test_default_resolution(name: str, expected: int | SkipReason) -> None:
    assert ClassMap.default().resolve(name) == expected


@pytest.mark.parametrize(
    ("mapping", "skip", "name", "expected"),
    [
        ({"Bus": 2}, [], "bus", 2),  # a new name
        ({"Car": 0}, [], "Car", 0),  # overrides a default
        ({"Motorcycle": 11}, [], "motorcycle", 11),  # mapping un-skips a default skip
        ({}, ["Car"], "car", SkipReason.SKIPPED_CLASS),  # skip removes a default mapping
        ({}, ["Vehicle"], "Vehicle", SkipReason.SKIPPED_CLASS),  # skip shadows our own names
        ({"Vehicle": 1}, [], "vehicle", 1),  # map shadows our own names
    ],
)
def test_overrides(mapping: dict[str, int], skip: list[str], name: str, expected: object) -> None:
    assert ClassMap.default().with_overrides(mapping=mapping, skip=skip).resolve(name) == expected


def test_overrides_refuse_a_name_both_mapped_and_skipped() -> None:
    with pytest.raises(ConfigError, match="bus both mapped and skipped"):
        ClassMap.default().with_overrides(mapping={"Bus": 2}, skip=["BUS"])


@pytest.mark.parametrize("slot", [-1, 80, 2.5])
def test_slots_outside_the_model_are_refused(slot: object) -> None:
    with pytest.raises(ConfigError, match="is not a slot"):
        ClassMap.default().with_overrides(mapping={"Bus": slot})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("text", "expected", "exception"),
    [
        ("Bus=2", {"Bus": 2}, does_not_raise()),  # one entry
        ("Bus=2, camping car=3,", {"Bus": 2, "camping car": 3}, does_not_raise()),  # spaces kept
        ("12=1", {"12": 1}, does_not_raise()),  # a numeric class code as name
        ("Bus", None, pytest.raises(ConfigError, match="not NAME=ID")),  # no '='
        ("=2", None, pytest.raises(ConfigError, match="not NAME=ID")),  # no name
        ("Bus=Truck, Tree = Tree", {"Bus": "Truck", "Tree": "Tree"}, does_not_raise()),  # names
        ("Bus=", None, pytest.raises(ConfigError, match="not NAME=ID")),  # no target
    ],
)
def test_parse_map_option(text: str, expected: dict[str, int | str] | None, exception) -> None:
    with exception:
        assert parse_map_option(text) == expected


def test_parse_skip_option() -> None:
    assert parse_skip_option("Bus, camping car,,") == ["Bus", "camping car"]


def test_names_as_targets_use_the_table_or_add_classes_to_it() -> None:
    names = class_map_from_options(["Lorry=Truck(Wint),Tree=Tree", "Snag=tree"])
    assert names.resolve("lorry") == 21
    assert names.resolve("Tree") == names.resolve("snag") == 17
    assert names.added == ("Tree",)
    assert names.table[17].name == "Tree" and names.table[57].name == "Tree(Night)"
    assert names.table[18].name == "Class-18"
    assert ClassTable.default()[17].name == "Class-17", "the platform's table is unchanged"


def test_a_users_own_table_resolves_its_names(tmp_path) -> None:
    path = tmp_path / "classes.json"
    path.write_text('[{"Id": 0, "Name": "Tree", "ShortName": "Tree", "Color": "#00aa00"}]')
    table = ClassTable.load(path)
    names = class_map_from_options(["Alive=Tree,Dead=Snag"], table=table)
    assert (names.resolve("Tree"), names.resolve("alive"), names.resolve("dead")) == (0, 0, 1)
    assert ClassTable.from_json_text(names.table.to_json()) == names.table
