from __future__ import annotations

import json

import pytest

from azaion_training.classes import NUM_SLOTS, ClassTable, WeatherMode
from azaion_training.errors import ConfigError


@pytest.fixture(scope="module")
def table() -> ClassTable:
    return ClassTable.default()


def test_table_has_80_slots_and_51_used(table: ClassTable) -> None:
    assert len(table) == NUM_SLOTS == 80
    assert len(table.names) == 80
    assert len(table.used()) == 17 * 3


@pytest.mark.parametrize(
    ("class_id", "name", "mode"),
    [
        (0, "ArmorVehicle", WeatherMode.NORM),  # first base class
        (1, "Truck", WeatherMode.NORM),
        (16, "Caponier", WeatherMode.NORM),  # last base class
        (17, "Class-17", None),  # gap after the base classes
        (20, "ArmorVehicle(Wint)", WeatherMode.WINT),
        (21, "Truck(Wint)", WeatherMode.WINT),  # the SPEC's example
        (41, "Truck(Night)", WeatherMode.NIGHT),
        (56, "Caponier(Night)", WeatherMode.NIGHT),
        (57, "Class-57", None),  # the example
        (79, "Class-79", None),  # last slot
    ],
)
def test_slot_names(table: ClassTable, class_id: int, name: str, mode: WeatherMode | None) -> None:
    assert table[class_id].name == name
    assert table[class_id].mode == mode
    assert table.names[class_id] == name


def test_weather_modes_share_the_base_colour(table: ClassTable) -> None:
    for base in table.base_classes:
        colours = {table[base.id + mode.value].color for mode in WeatherMode}
        assert colours == {base.color}


def test_base_colours_are_distinct_and_valid(table: ClassTable) -> None:
    colours = [c.color for c in table.base_classes]
    assert len(set(colours)) == 17
    for info in table:
        assert len(info.rgb) == 3 and all(0 <= v <= 255 for v in info.rgb)
        assert info.bgr == info.rgb[::-1]


@pytest.mark.parametrize("bad_id", [-1, 80, 1000])
def test_out_of_range_ids_raise(table: ClassTable, bad_id: int) -> None:
    with pytest.raises(KeyError):
        table[bad_id]


def test_id_of_is_case_insensitive(table: ClassTable) -> None:
    assert table.id_of("truck(wint)") == 21
    with pytest.raises(KeyError):
        table.id_of("Submarine")


@pytest.mark.parametrize(
    "rows",
    [
        [],  # empty
        [{"Id": 1, "Name": "A", "ShortName": "A", "Color": "#000000"}],  # ids not from 0
        [{"Id": 0, "Name": "A", "ShortName": "A", "Color": "red"}],  # colour not #rrggbb
        [{"Id": 0, "Color": "#000000"}],  # no name
    ],
)
def test_invalid_class_files_raise_config_error(rows: list[dict]) -> None:
    with pytest.raises(ConfigError):
        ClassTable.from_json_text(json.dumps(rows))
