"""The annotated video labels a user's class by the model's own name for it."""

from __future__ import annotations

from azaion_training.classes import ClassTable
from azaion_training.infer.annotate import _look


def test_an_unnamed_slot_takes_the_models_name() -> None:
    table = ClassTable.default()
    names = [info.name for info in table]
    names[17] = "Tree"
    assert _look(table, 17, names)[1] == "Tree"
    assert _look(table, 1, names) == (table[1].bgr, "Truck")
    assert _look(table, 17, ())[1] == "C17"
    assert _look(table, 95, ())[1] == "95"
