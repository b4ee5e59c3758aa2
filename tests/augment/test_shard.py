"""`azaion-augment --shard I/N`: the shards of a tree write what one augmenter writes, bytewise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from azaion_training.augment import Augmenter, PassSummary
from azaion_training.augment.plan import Shard
from azaion_training.cli.augment import main
from azaion_training.config import AugmentSettings
from azaion_training.demo.world import write_annotations
from azaion_training.errors import BusyError, ConfigError
from azaion_training.fs import DataTree
from tests.augment.helpers import HEIGHT, WIDTH, contents
from tests.helpers import subprocess_env

SETTINGS = AugmentSettings(workers=1, variants=3)


def _pass(tree: DataTree, shard: Shard) -> PassSummary:
    with Augmenter(tree, SETTINGS, shard=shard) as augmenter:
        return augmenter.run_pass(stop=threading.Event(), progress=False)


def _change(tree: DataTree, names: list[str]) -> None:
    """What the queue does between passes: a deletion, an edited label, a new annotation."""
    (tree.data.images / f"{names[0]}.jpg").unlink()
    tree.data.label_path(names[0]).unlink()
    tree.data.label_path(names[1]).write_text("0 0.5 0.5 0.2 0.2\n")
    write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, seed=9, prefix="late")


@pytest.fixture
def source(tmp_path: Path) -> tuple[DataTree, list[str]]:
    """A tree of 11 annotations: ``fam_2`` is also a sample name of ``fam`` (skipped), ``solo_3``
    looks like a sample of nothing; a stale sample of a long-gone annotation is in
    data-processed/."""
    tree = DataTree(root=tmp_path / "source").create()
    names = write_annotations(tree.data, 8, width=WIDTH, height=HEIGHT, seed=3)
    for name in ("fam", "fam_2", "solo_3"):
        shutil.copy(tree.data.images / f"{names[-1]}.jpg", tree.data.images / f"{name}.jpg")
        shutil.copy(tree.data.label_path(names[-1]), tree.data.label_path(name))
    tree.data_processed.create()
    (tree.data_processed.labels / "gone_1.txt").write_text("")
    return tree, names


def _copy(tree: DataTree, root: Path) -> DataTree:
    shutil.copytree(tree.root, root)
    return DataTree(root=root)


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3])
def test_shards_write_what_one_augmenter_writes(
    source: tuple[DataTree, list[str]], tmp_path: Path, count: int
) -> None:
    tree, names = source
    one = _copy(tree, tmp_path / "one")
    many = _copy(tree, tmp_path / "many")
    whole = _pass(one, Shard())
    shards = [_pass(many, Shard(index, count)) for index in range(1, count + 1)]
    assert contents(many.data_processed) == contents(one.data_processed)
    assert "labels/gone_1.txt" not in contents(one.data_processed)
    assert sorted(s.made for s in shards) != [0] * count  # the work really was dealt out
    assert sum(s.made for s in shards) == whole.made == len(names) + 2
    assert sum(s.skipped for s in shards) == whole.skipped == 1
    assert all(s.made < whole.made for s in shards)
    # The next passes: a deleted source's samples go (removed by its own shard), an edit is
    # re-made, a new one made; again the same bytes.
    _change(one, names)
    _change(many, names)
    whole = _pass(one, Shard())
    shards = [_pass(many, Shard(index, count)) for index in range(1, count + 1)]
    assert contents(many.data_processed) == contents(one.data_processed)
    assert sum(s.removed for s in shards) == whole.removed == 4 * 2  # 4 samples, image + label
    assert sum(s.made for s in shards) == whole.made == 2
    assert sum(s.unchanged for s in shards) == whole.unchanged
    state = sorted(p.name for p in many.data_processed.path.glob(".augment-state*"))
    assert state == [f".augment-state.{i}-of-{count}.sqlite" for i in range(1, count + 1)]


def test_shards_deal_out_every_name_once_by_family() -> None:
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    names = [f"frame_{i:06d}" for i in range(300)]
    owners = [[s.owns(n, variants=7) for s in shards] for n in names]
    assert all(sum(row) == 1 for row in owners)
    assert all(60 < sum(row[i] for row in owners) < 140 for i in range(3))  # roughly even
    for shard in shards:  # a sample and its temporary go with their annotation
        assert shard.owns("x_12", variants=7) == shard.owns_file("x_12_3.jpg", variants=7)
        assert shard.owns("x_12", variants=7) == shard.owns_file(".x_12_5.txt.0a1b.tmp", variants=7)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="shard"):
        Shard.parse(text)


def test_a_bad_shard_on_the_command_line_is_a_usage_error(
    source: tuple[DataTree, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    tree, _ = source
    with pytest.raises(SystemExit) as exit_:
        main(["--once", "--root", str(tree.root), "--shard", "3/2"])
    assert exit_.value.code == 2
    assert "need 1 <= I <= N" in capsys.readouterr().err


def test_locks_one_augmenter_per_shard_and_one_shard_count_per_tree(
    source: tuple[DataTree, list[str]],
) -> None:
    tree, _ = source
    with Augmenter(tree, SETTINGS, shard=Shard(1, 2)), Augmenter(tree, SETTINGS, shard=Shard(2, 2)):
        with pytest.raises(BusyError, match=rf"shard 1/2 is running .*PID {os.getpid()}"):
            Augmenter(tree, SETTINGS, shard=Shard(1, 2))
        with pytest.raises(ConfigError, match="another shard count"):
            Augmenter(tree, SETTINGS)
        with pytest.raises(ConfigError, match="another shard count"):
            Augmenter(tree, SETTINGS, shard=Shard(1, 3))
    with Augmenter(tree, SETTINGS), pytest.raises(ConfigError, match="another shard count"):
        Augmenter(tree, SETTINGS, shard=Shard(2, 2))
    Augmenter(tree, SETTINGS, shard=Shard(1, 3)).close()  # free again


@pytest.mark.slow
def test_two_shard_processes_at_once_write_what_one_writes(
    source: tuple[DataTree, list[str]], tmp_path: Path
) -> None:
    tree, _ = source
    one = _copy(tree, tmp_path / "one")
    many = _copy(tree, tmp_path / "many")
    assert main(["--once", "--root", str(one.root), "--workers", "1"]) == 0
    command = [sys.executable, "-m", "azaion_training.cli.augment", "--once", "--workers", "1"]
    shards = [
        subprocess.Popen(
            [*command, "--root", str(many.root), "--shard", f"{i}/2"],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [shard.communicate(timeout=300)[0] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], outputs
    assert contents(many.data_processed) == contents(one.data_processed)
