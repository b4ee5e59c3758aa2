"""Change detection under a moving tree (of `augment/plan.py`): a source read again."""

from __future__ import annotations

import os

from azaion_training.augment.plan import Plan, rescan, scan_sources
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from tests.augment.helpers import HEIGHT, WIDTH


def scanned(tree: DataTree) -> Plan:
    plan = Plan()
    scan_sources(tree.data, recipe="r", variants=7, plan=plan)
    return plan


def test_a_source_read_again_has_its_new_stamp(tree: DataTree) -> None:
    (name,) = write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT)
    source = scanned(tree).sources[name]
    label = tree.data.label_path(name)
    label.write_text("0 0.5 0.5 0.2 0.2\n0 0.4 0.4 0.1 0.1\n")
    os.utime(label, ns=(1, 1))
    fresh = rescan(source)
    assert fresh is not None and fresh != source
    assert (fresh.name, fresh.stamp.image, fresh.stamp.recipe) == (name, source.stamp.image, "r")
    assert (fresh.stamp.label_mtime_ns, fresh.stamp.label_size) == (1, label.stat().st_size)
    assert rescan(fresh) == fresh


def test_a_source_whose_file_left_reads_again_as_none(tree: DataTree) -> None:
    names = write_annotations(tree.data, 2, width=WIDTH, height=HEIGHT)
    plan = scanned(tree)
    tree.data.label_path(names[0]).unlink()
    next(tree.data.images.glob(f"{names[1]}.*")).unlink()
    assert [rescan(plan.sources[name]) for name in names] == [None, None]
    assert scanned(tree).incomplete == sorted(names)
