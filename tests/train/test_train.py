"""End-to-end training on CPU: a tiny synthetic dataset, yolo11n, imgsz 64, 2 epochs.

One run is trained once per module: stopped after epoch 1 of 2 (a callback raises, as a crash
would), then resumed through the console script, which finishes epoch 2, installs the model,
exports ONNX and scores it. The tests below inspect what that left.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from azaion_training._ultralytics import provide_plot_fonts
from azaion_training.cli.train import main
from azaion_training.config import ENVIRONMENT, Settings, load_settings
from azaion_training.dataset.formation import count_dataset
from azaion_training.errors import ConfigError, TrainingError
from azaion_training.fs import DataTree
from azaion_training.store.models import open_store
from azaion_training.train.job import train, training_arguments
from azaion_training.train.resume import latest_run, prepare_resume
from tests.dataset.helpers import write_real_samples

DAY = dt.date(2026, 11, 26)


class Crash(Exception):
    """Raised by a callback to stop a run after its first epoch."""


@dataclass(frozen=True)
class Trained:
    tree: DataTree
    config: Path
    settings: Settings
    run_dir: Path
    interrupted_epoch: int
    interrupted_planned: int
    exit_code: int
    stdout: str
    log: str
    network_attempts: list[str]


def _config(tree: DataTree, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "root_dir": str(tree.root),
                "training": {
                    "model": "yolo11n.yaml",
                    "epochs": 2,
                    "batch": 16,
                    "imgsz": 64,
                    "device": "cpu",
                    "workers": 0,
                },
                "export": {"imgsz": 64, "batch": 4},
            }
        )
    )
    return path


def _stop_after_first_epoch(trainer: object) -> None:
    if trainer.epoch == 0:  # type: ignore[attr-defined]
        raise Crash("power cut after epoch 1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, network_guard: list[str]) -> Trained:
    import torch

    base = tmp_path_factory.mktemp("train")
    tree = DataTree(root=base / "azaion").create()
    config = _config(tree, base / "config.yaml")
    attempts_before = len(network_guard)  # the guard's list is session-wide
    with pytest.MonkeyPatch.context() as patch:
        for name in ENVIRONMENT:
            patch.delenv(name, raising=False)
        patch.chdir(base)
        settings = load_settings(config, env_file=None)
        write_real_samples(tree, 30)
        with pytest.raises(TrainingError, match="power cut") as crash:
            train(
                settings,
                tree,
                date=DAY,
                progress=False,
                callbacks={"on_model_save": [_stop_after_first_epoch]},
            )
        assert isinstance(crash.value.__cause__, Crash)
        run_dir = latest_run(tree)
        checkpoint = torch.load(run_dir / "weights" / "last.pt", weights_only=False)
        stdout, log = io.StringIO(), base / "train.log"
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            code = main(["--config", str(config), "--resume", "--log-file", str(log)])
    return Trained(
        tree=tree,
        config=config,
        settings=settings,
        run_dir=run_dir,
        interrupted_epoch=checkpoint["epoch"],
        interrupted_planned=checkpoint["train_args"]["epochs"],
        exit_code=code,
        stdout=stdout.getvalue(),
        log=log.read_text(),
        network_attempts=network_guard[attempts_before:],
    )


@pytest.mark.slow
def test_the_crash_left_epoch_1_of_2_and_resume_trained_epoch_2(trained: Trained) -> None:
    assert (trained.interrupted_epoch, trained.interrupted_planned) == (0, 2)
    assert trained.exit_code == 0, trained.log
    assert trained.run_dir == trained.tree.models / "azaion-2026-11-26"
    with open(trained.run_dir / "results.csv") as handle:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(handle)]
    assert epochs == [1, 2]
    assert "resuming" in trained.log and "after epoch 1 of 2" in trained.log


@pytest.mark.slow
def test_model_and_onnx_are_installed_and_onnx_gives_4_300_6(trained: Trained) -> None:
    import onnxruntime as ort

    tree = trained.tree
    assert tree.current_model_pt.is_file() and tree.current_model_onnx.is_file()
    assert tree.current_model_pt.read_bytes() == (trained.run_dir / "weights/best.pt").read_bytes()
    session = ort.InferenceSession(str(tree.current_model_onnx), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"images": np.zeros((4, 3, 64, 64), np.float32)})
    assert output.shape == (4, 300, 6)
    names = yaml.safe_load(session.get_modelmeta().custom_metadata_map["names"])
    assert len(names) == 80 and names[21] == "Truck(Wint)"


@pytest.mark.slow
def test_summary_reports_counts_metrics_per_class_and_paths(trained: Trained) -> None:
    out = trained.stdout
    counts = count_dataset(trained.tree.datasets / "azaion-2026-11-26", variants=7)
    for split, c in counts.items():
        assert f"{split:<6} {c.samples:>8} samples  {c.sources:>7} sources" in out
    assert counts["train"].samples == 8 * counts["train"].sources
    assert "gate      candidate mAP50-95" in out and "no current model to compare" in out
    assert "valid (as deployed): mAP50 " in out and "test (as deployed): mAP50 " in out
    assert "ArmorVehicle" in out or "Truck" in out or "Vehicle" in out or "Building" in out
    assert f"onnx      {trained.tree.current_model_onnx}" in out
    assert f"plots     {trained.run_dir}" in out
    assert (trained.run_dir / "results.png").is_file()
    assert (trained.run_dir / "weights" / "best.onnx").is_file()  # what the gate scored
    assert "published yes" in out
    assert "published model azaion.onnx" in trained.log


@pytest.mark.slow
def test_the_cli_writes_the_report_and_sends_ultralytics_to_the_console_log(
    trained: Trained,
) -> None:
    report = trained.run_dir / "report.html"
    assert "<section id='classes'>" in report.read_text()
    assert trained.stdout.rstrip().endswith(f"report    {report}")
    console = (trained.tree.logs / "console.log").read_text()
    # The suite runs Ultralytics with YOLO_VERBOSE=false: what is left is the export's warnings.
    assert "DeprecationWarning" in console and "DeprecationWarning" not in trained.stdout


@pytest.mark.slow
def test_the_onnx_was_published_to_the_local_store(trained: Trained) -> None:
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(trained.tree.root)}, env_file=None)
    with open_store(settings, trained.tree) as store:
        assert store.fetch("azaion.onnx") == trained.tree.current_model_onnx.read_bytes()


@pytest.mark.slow
def test_nothing_tried_to_reach_the_network(trained: Trained) -> None:
    assert trained.network_attempts == []


@pytest.mark.slow
def test_resuming_a_finished_run_needs_more_epochs(trained: Trained, capsys) -> None:
    code = main(["--config", str(trained.config), "--resume", "--no-progress"])
    assert code == 1
    assert "has trained 2 of 2 epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_raised_epochs_resume_a_finished_run_from_its_epoch_checkpoint(
    trained: Trained, tmp_path: Path
) -> None:
    from ultralytics.models.yolo.detect import DetectionTrainer

    run = tmp_path / "azaion-2026-11-26"
    shutil.copytree(trained.run_dir, run)
    point = prepare_resume(run, epochs=5)
    assert (point.last, point.done, point.epochs) == (run / "weights" / "last.pt", 2, 5)
    # Ultralytics itself now plans 5 epochs and starts after epoch 2.
    resumed = DetectionTrainer(
        overrides={"resume": str(point.last), "data": point.data, "save_dir": str(run)}
    )
    assert resumed.epochs == 5 and resumed.args.epochs == 5


@pytest.mark.slow
def test_the_gate_scores_both_models_and_force_installs_the_candidate(
    trained: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1-epoch candidate against the installed 2-epoch model, on the same test split, forced in.

    One run: a candidate that is not forced and worse stays out (and the job exits 0) in
    tests/train/test_gate.py; the gate's decision for every case is `gate.decide`'s unit tests
    there; the first install (no current model) is this module's `trained`."""
    tree, dataset = trained.tree, trained.tree.datasets / "azaion-2026-11-26"
    base = ["--config", str(trained.config), "--dataset", str(dataset), "--no-progress"]
    assert main([*base, "--epochs", "1", "--force"]) == 0
    run = latest_run(tree)
    record = json.loads((run / "metrics.json").read_text())
    forced = record["gate"]
    assert forced["split"] == "test" and forced["tolerance"] == 0.005
    assert forced["candidate"] == record["candidate"]["test"]["map50_95"]
    assert forced["current"] == record["current"]["map50_95"]
    assert record["dataset"]["dataset"] == str(dataset)
    assert record["dataset"]["manifest_sha256"] and record["dataset"]["ledger_generation"] == 1
    assert forced["install"] is True
    assert forced["forced"] is (forced["candidate"] < forced["current"] - forced["tolerance"])
    assert forced["reason"] in capsys.readouterr().out
    assert tree.current_model_pt.read_bytes() == (run / "weights" / "best.pt").read_bytes()
    record = json.loads((tree.root / "model-store" / "models" / "azaion.onnx.json").read_text())
    assert record["metadata"]["map50_95"] == forced["candidate"]
    assert record["metadata"]["previous_map50_95"] == forced["current"]
    assert record["metadata"]["dataset"] == "azaion-2026-11-26"


def test_provide_plot_fonts_stops_the_font_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, network_guard: list[str]
) -> None:
    import ultralytics.utils
    import ultralytics.utils.checks
    from ultralytics.utils.checks import check_font

    before = len(network_guard)
    monkeypatch.setattr(ultralytics.utils, "USER_CONFIG_DIR", tmp_path)
    monkeypatch.setattr(ultralytics.utils.checks, "USER_CONFIG_DIR", tmp_path)
    cache = check_font.__wrapped__  # Ultralytics caches the answer per font name
    cache.cache_clear()
    try:
        provide_plot_fonts()
        assert check_font("Arial.ttf") == tmp_path / "Arial.ttf"
        assert check_font("Arial.Unicode.ttf") == tmp_path / "Arial.Unicode.ttf"
    finally:
        cache.cache_clear()
    assert len(network_guard) == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"epochs": 3}, "epochs"),  # repeats training.epochs
        ({"project": "/tmp"}, "project"),  # would move the run folder
        ({"resume": True}, "resume"),  # resuming is --resume's job
    ],
)
def test_extra_cannot_override_what_train_sets(
    settings: Settings, extra: dict[str, object], message: str
) -> None:
    settings.training.extra.update(extra)
    with pytest.raises(ConfigError, match=message):
        training_arguments(settings, data_yaml=Path("d.yaml"), run_dir=Path("m/azaion-x"))


def test_every_training_setting_reaches_ultralytics(settings: Settings) -> None:
    settings.training.extra.update({"lr0": 0.005})
    arguments = training_arguments(
        settings, data_yaml=Path("/d/data.yaml"), run_dir=Path("/r/models/azaion-2026-11-26")
    )
    assert arguments == {
        "data": "/d/data.yaml",
        "epochs": 120,
        "batch": 11,
        "imgsz": 1280,
        "save_period": 1,
        "device": None,
        "workers": 8,
        "patience": 100,
        "amp": True,
        "plots": True,
        "project": "/r/models",
        "name": "azaion-2026-11-26",
        "exist_ok": True,
        "lr0": 0.005,
    }


def test_resume_without_a_run_is_a_clear_error(settings: Settings, capsys) -> None:
    assert main(["--root", str(settings.root_dir), "--resume"]) == 1
    assert "no run with weights/last.pt" in capsys.readouterr().err


def test_form_only_forms_the_dataset_and_stops(settings: Settings, tree: DataTree, capsys) -> None:
    from tests.dataset.helpers import write_fake_samples

    write_fake_samples(tree.data_processed, 10)
    assert main(["--root", str(tree.root), "--form-only", "--no-progress"]) == 0
    assert "train 56 samples / 7 sources" in capsys.readouterr().out
    assert not list(tree.models.iterdir())
    assert os.environ["YOLO_OFFLINE"] == "1"


def test_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--model", "--epochs", "--batch", "--imgsz", "--device", "--workers", "--patience",
        "--resume", "--dataset", "--form-only", "--no-publish", "TRAINING_EPOCHS",
    ):  # fmt: skip
        assert option in out


@pytest.mark.slow
def test_offline_trainer_can_be_rebuilt_in_a_ddp_worker(tmp_path: Path) -> None:
    """Ultralytics' DDP launcher ships the trainer class with cloudpickle to fresh processes."""
    import subprocess
    import sys

    import cloudpickle
    import torch

    from azaion_training._ultralytics import offline_trainer

    state = tmp_path / "state.pt"
    torch.save({"trainer": offline_trainer()}, state, pickle_module=cloudpickle)
    code = (
        "from ultralytics.utils.patches import torch_load\n"
        f"cls = torch_load({str(state)!r}, map_location='cpu')['trainer']\n"
        "print(cls.__name__, cls.__mro__[1].__name__, '_setup_train' in vars(cls))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["OfflineDetectionTrainer", "DetectionTrainer", "True"]


class _FakeModel:
    """Just enough of a model for the AMP check: parameters on a device of some type."""

    def __init__(self, device: str) -> None:
        self._device = device

    def parameters(self):  # type: ignore[no-untyped-def]
        from types import SimpleNamespace

        yield SimpleNamespace(device=SimpleNamespace(type=self._device))


@pytest.mark.parametrize(
    ("device", "weights_on_disk", "expected", "asks_ultralytics"),
    [
        ("cpu", False, False, True),  # CPU: Ultralytics answers False before any download
        ("cuda", False, True, False),  # GPU, no yolo26n.pt: skip the download, keep AMP on
        ("cuda", True, False, True),  # GPU, weights on disk: Ultralytics' own check decides
    ],
)
def test_the_amp_check_never_downloads(
    device: str,
    weights_on_disk: bool,
    expected: bool,
    asks_ultralytics: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ultralytics.utils

    from azaion_training._ultralytics import _offline_check_amp

    monkeypatch.setattr(ultralytics.utils, "WEIGHTS_DIR", tmp_path)
    if weights_on_disk:
        (tmp_path / "yolo26n.pt").write_bytes(b"weights")
    asked = []
    check = _offline_check_amp(lambda model: asked.append(model) or False)
    assert check(_FakeModel(device)) is expected
    assert bool(asked) is asks_ultralytics


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ("datasets/azaion-2026-11-26", True),  # the dataset folder
        ("datasets/azaion-2026-11-26/data.yaml", True),  # its data.yaml
        ("datasets/azaion-2026-11-27", False),  # nothing there
    ],
)
def test_dataset_option_takes_a_folder_or_its_data_yaml(
    tmp_path: Path, given: str, found: bool
) -> None:
    from azaion_training.errors import DatasetError
    from azaion_training.train.job import _find_data_yaml

    data_yaml = tmp_path / "datasets" / "azaion-2026-11-26" / "data.yaml"
    data_yaml.parent.mkdir(parents=True)
    data_yaml.write_text("nc: 80\n")
    if found:
        assert _find_data_yaml(tmp_path / given) == data_yaml
    else:
        with pytest.raises(DatasetError, match="no dataset at"):
            _find_data_yaml(tmp_path / given)


def test_latest_run_is_the_one_written_last(tree: DataTree) -> None:
    for index, name in enumerate(["azaion-2026-11-27", "azaion-2026-11-26.2", "azaion-2026-11-26"]):
        last = tree.models / name / "weights" / "last.pt"
        last.parent.mkdir(parents=True)
        last.write_bytes(b"")
        os.utime(last, (1_000_000 + index, 1_000_000 + index))
    (tree.models / "azaion-2026-11-28").mkdir()  # no weights yet: not a candidate
    assert latest_run(tree) == tree.models / "azaion-2026-11-26"
