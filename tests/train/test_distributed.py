"""Training on two machines, played by two launchers on this one (gloo on 127.0.0.1).

Each "machine" is its own torchrun (``--nnodes 2 --nproc-per-node 1``, ``--node-rank`` 0 and 1,
the same master); both share one data root, as machines sharing a file system do. One run is
trained through the documented torchrun line with a recording rank (`tests.train.rank_recorder`),
one through ``azaion-train --nnodes 2 --node-rank R --master HOST:PORT`` with one rank killed.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from azaion_training.config import load_settings
from azaion_training.errors import ConfigError
from azaion_training.fs import DataTree
from azaion_training.store.models import open_store
from azaion_training.train.distributed import Master, launch_arguments, launched
from tests.dataset.helpers import write_real_samples
from tests.helpers import REPO, subprocess_env, wait_for

TIMEOUT_MIN = 2.0
"""training.rank_timeout_min of these runs: rank 0 preparing a resume imports Ultralytics
(unpickling the checkpoint), which takes tens of seconds on a loaded machine."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree(base: Path, *, epochs: int) -> tuple[DataTree, Path]:
    tree = DataTree(root=base / "azaion").create()
    write_real_samples(tree, 8, size=64)
    config = base / "config.yaml"
    training = {"model": "yolo11n.yaml", "epochs": epochs, "batch": 8, "imgsz": 64}
    training |= {"device": "cpu", "workers": 0, "plots": False, "rank_timeout_min": TIMEOUT_MIN}
    config.write_text(
        yaml.safe_dump(
            {"root_dir": str(tree.root), "training": training, "export": {"imgsz": 64, "batch": 1}}
        )
    )
    return tree, config


def _start(command: list[str], *, cwd: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=subprocess_env(env), stdout=out, stderr=subprocess.STDOUT
        )


@dataclass(frozen=True)
class TwoNodes:
    tree: DataTree
    config: Path
    records: Path
    codes: list[int]
    outputs: list[str]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> TwoNodes:
    base = tmp_path_factory.mktemp("two-nodes")
    tree, config = _tree(base, epochs=2)
    records = base / "records"
    records.mkdir()
    master = Master("127.0.0.1", _free_port())
    nodes = []
    for rank in (0, 1):
        arguments = launch_arguments(
            nnodes=2,
            node_rank=rank,
            master=master,
            nproc_per_node=1,
            rendezvous="static",
            arguments=["--config", str(config), "--no-progress"],
        )
        module = arguments.index("-m")  # the documented line, with the recording rank instead
        arguments[module : module + 2] = [str(REPO / "tests" / "train" / "rank_recorder.py")]
        command = [sys.executable, "-m", "torch.distributed.run", *arguments]
        log = base / f"node{rank}.log"
        nodes.append((log, _start(command, cwd=base, log=log, env={"RECORD_DIR": str(records)})))
    codes = [process.wait(timeout=600) for _, process in nodes]
    return TwoNodes(tree, config, records, codes, [log.read_text() for log, _ in nodes])


@pytest.mark.slow
def test_each_rank_trains_on_its_own_half_of_every_epoch(two_nodes: TwoNodes) -> None:
    assert two_nodes.codes == [0, 0], two_nodes.outputs
    (dataset,) = two_nodes.tree.datasets.iterdir()
    train = {path.name for path in (dataset / "train" / "images").iterdir()}
    seen = [json.loads((two_nodes.records / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(seen[0]) == sorted(seen[1]) == ["0", "1"]  # two epochs on each rank
    for epoch in ("0", "1"):
        mine, theirs = set(seen[0][epoch]), set(seen[1][epoch])
        assert len(mine) == len(seen[0][epoch]) == len(train) // 2  # each image once, half each
        assert not mine & theirs
        assert mine | theirs == train
    assert seen[0]["0"] != seen[0]["1"]  # shuffled anew each epoch


@pytest.mark.slow
def test_both_ranks_end_with_the_same_weights(two_nodes: TwoNodes) -> None:
    """Every weight is the same on both ranks (DDP averages the gradients). BatchNorm's running
    statistics are each rank's own: Ultralytics' DDP does not broadcast buffers (on one machine
    too), and rank 0's are the ones saved."""
    import torch

    first, second = (torch.load(two_nodes.records / f"rank{r}.pt") for r in (0, 1))
    assert first.keys() == second.keys()
    statistics = {key for key in first if key.endswith((".running_mean", ".running_var"))}
    weights = first.keys() - statistics
    assert len(weights) > 300
    assert [key for key in weights if not torch.equal(first[key], second[key])] == []
    assert any(not torch.equal(first[key], second[key]) for key in statistics)  # own halves
    assert any(tensor.abs().sum() > 0 for tensor in first.values())  # a real model


@pytest.mark.slow
def test_rank_zero_alone_writes_one_run_and_publishes_one_model(two_nodes: TwoNodes) -> None:
    tree = two_nodes.tree
    runs = [path for path in tree.models.iterdir() if path.is_dir()]
    assert [path.name for path in runs] == [f"azaion-{runs[0].name.split('-', 1)[1]}"]
    assert len(list(tree.models.rglob("metrics.json"))) == 1
    assert (runs[0] / "weights" / "best.pt").is_file()
    assert "published yes" in two_nodes.outputs[0]
    assert "rank 1: trained its part" in two_nodes.outputs[1]
    assert "published" not in two_nodes.outputs[1]
    settings = load_settings(two_nodes.config, env_file=None)
    with open_store(settings, tree) as store:
        (model,) = store.list()
        assert len(model.versions) == 1
        assert store.fetch("azaion.onnx") == tree.current_model_onnx.read_bytes()
    assert (tree.logs / "console.log").is_file() and (tree.logs / "console.rank1.log").is_file()


def _worker(launcher: subprocess.Popen) -> psutil.Process | None:
    children = psutil.Process(launcher.pid).children()
    return children[0] if children else None


@pytest.mark.slow
def test_a_killed_rank_stops_the_other_with_one_line_and_nothing_published(
    tmp_path: Path,
) -> None:
    tree, config = _tree(tmp_path, epochs=30)
    master = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "azaion_training.cli.train", "--config", str(config)]
    command += ["--no-progress", "--nnodes", "2", "--master", master, "--node-rank"]
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    nodes = [_start([*command, str(r)], cwd=tmp_path, log=logs[r], env={}) for r in (0, 1)]
    try:
        wait_for(
            lambda: "epoch 1/30" in logs[1].read_text(),
            timeout=300,
            what="rank 1's first epoch",
            details=lambda: logs[1].read_text(),
        )
        worker = _worker(nodes[1])
        assert worker is not None
        time.sleep(1.0)  # into the second epoch
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code = nodes[0].wait(timeout=TIMEOUT_MIN * 60 + 60)
        took = time.monotonic() - killed
    finally:
        for node in nodes:
            if node.poll() is None:
                for child in psutil.Process(node.pid).children(recursive=True):
                    child.kill()
                node.kill()
            node.wait()
    survivor = logs[0].read_text()
    assert code == 1, survivor
    assert took < TIMEOUT_MIN * 60 + 30
    # the console writes INFO as the message alone, anything above it with its level first
    problems = ("azaion-train: error: ", "error: ", "warning: ", "critical: ", "Traceback")
    lines = [line for line in survivor.splitlines() if line.startswith(problems)]
    assert len(lines) == 1 and lines[0].startswith("azaion-train: error: "), survivor
    assert nodes[1].returncode == 1
    assert "azaion-train: error: rank 1 failed: killed by SIGKILL" in logs[1].read_text()
    assert not tree.current_model_pt.exists() and not tree.current_model_onnx.exists()
    assert not list(tree.models.rglob("metrics.json"))
    assert not (tree.root / "model-store").exists()


def test_launched_reads_the_launchers_environment() -> None:
    environ = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    launch = launched(environ)
    assert launch is not None and (launch.rank, launch.local_rank, launch.leader) == (3, 1, False)
    assert launched({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is None


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.1:29400", "10.0.0.1", 29400),
        ("gpu-a", "gpu-a", 29500),
        ("[fe80::1]:7", "fe80::1", 7),
    ],
)
def test_master_parses_host_and_port(text: str, host: str, port: int) -> None:
    assert Master.parse(text) == Master(host, port)


@pytest.mark.parametrize("text", ["", ":29500", "host:0", "host:70000", "a:b:c", "host:x"])
def test_a_bad_master_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--master"):
        Master.parse(text)


def test_the_launcher_checks_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    from azaion_training.cli.train import main

    for argv, message in (
        (["--nnodes", "2"], "--nnodes needs --master"),
        (["--nnodes", "2", "--master", "h:1", "--node-rank", "2"], "--node-rank < --nnodes"),
        (["--nnodes", "2", "--master", "h:0"], "expected HOST:PORT"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_resume_continues_the_run_on_the_same_machines(two_nodes: TwoNodes) -> None:
    """After the others (it changes the run): ``--resume --epochs 3`` on both machines."""
    tree = two_nodes.tree
    (run,) = [path for path in tree.models.iterdir() if path.is_dir()]
    master = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "azaion_training.cli.train", "--config", str(two_nodes.config)]
    command += ["--no-progress", "--resume", "--epochs", "3", "--no-publish"]
    command += ["--nnodes", "2", "--master", master, "--node-rank"]
    base = two_nodes.config.parent
    logs = [base / f"resume{rank}.log" for rank in (0, 1)]
    nodes = [_start([*command, str(r)], cwd=base, log=logs[r], env={}) for r in (0, 1)]
    codes = [node.wait(timeout=600) for node in nodes]
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], outputs
    assert "epoch 3/3" in outputs[0] and "epoch 3/3" in outputs[1]
    assert "epoch 1/3" not in outputs[1]  # continued, not started again
    assert [path for path in tree.models.iterdir() if path.is_dir()] == [run]
    assert len((run / "results.csv").read_text().splitlines()) == 1 + 3
