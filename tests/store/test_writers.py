"""One writer per model store: concurrent `azaion-model publish` processes on one root (real
processes, real files). Each publish either gets a version of its own that fetches back to its
bytes, or exits 1 at once naming the writer that holds the store; none is lost or replaced."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from azaion_training.cli.model import main
from azaion_training.fs import DataTree
from azaion_training.locks import hold
from tests import helpers

WRITERS = 8


def test_concurrent_publishes_never_lose_a_model(tree: DataTree, tmp_path: Path, capsys) -> None:
    models = []
    for index in range(WRITERS):
        path = tmp_path / f"model-{index}.onnx"
        path.write_bytes(bytes([index]) * 200_000)
        models.append(path)
    command = [sys.executable, "-m", "azaion_training.cli.model", "--root", str(tree.root)]
    processes = [
        subprocess.Popen(
            [*command, "publish", str(path), "--name", "azaion.onnx"],
            cwd=tmp_path,
            # every version kept: with 6 or more publishes the default 5 would prune v1
            env=helpers.subprocess_env({"AZAION_STORE_KEEP_VERSIONS": str(WRITERS)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in models
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    published: dict[int, int] = {}
    for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        if process.returncode == 0:
            version = int(re.search(r"published azaion.onnx v(\d+)", output).group(1))
            assert version not in published, f"v{version} published twice"
            published[version] = index
        else:
            assert process.returncode == 1, output
            assert re.search(
                r"another azaion-model publish or rollback is running .*PID \d+", output
            )
            assert len(output.strip().splitlines()) == 1, output
    assert published, "no publish succeeded"
    print(f"{len(published)} of {WRITERS} published, the others refused at once")
    for version, index in published.items():
        capsys.readouterr()
        target = tmp_path / f"fetched-{version}"
        argv = ["--root", str(tree.root), "fetch", "azaion.onnx", "--version", str(version)]
        assert main([*argv, "--decrypt-to", str(target)]) == 0
        assert target.read_bytes() == models[index].read_bytes()


def test_a_publish_while_another_holds_the_store_fails_at_once(
    tree: DataTree, tmp_path: Path, capsys
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 1000)
    assert main(["--root", str(tree.root), "publish", str(model)]) == 0
    store = tree.model_store
    with hold(store / ".azaion-publish.lock", role="test"):
        assert main(["--root", str(tree.root), "publish", str(model)]) == 1
        assert main(["--root", str(tree.root), "rollback", "m.onnx"]) == 1
        assert main(["--root", str(tree.root), "list"]) == 0  # readers never wait
    err = capsys.readouterr().err
    assert err.count("another azaion-model publish or rollback is running") == 2


def test_leftovers_of_a_killed_publish_are_removed_by_the_next(
    tree: DataTree, tmp_path: Path
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"y" * 1000)
    assert main(["--root", str(tree.root), "publish", str(model)]) == 0
    models = tree.model_store / "models"
    orphan = models / "m.onnx@v2.big"  # a publish killed after its big part
    orphan.write_bytes(b"partial")
    temporary = models / ".m.onnx@v2.small.1234abcd.tmp"
    temporary.write_bytes(b"partial")
    assert main(["--root", str(tree.root), "publish", str(model)]) == 0
    assert not temporary.exists()
    assert (models / "m.onnx@v2.json").exists() and orphan.read_bytes() != b"partial"
