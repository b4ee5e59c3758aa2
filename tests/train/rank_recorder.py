"""A rank of ``azaion-train`` that records what it trained on: the torchrun entry of the tests.

``torchrun ... tests/train/rank_recorder.py ARGS`` runs ``azaion-train ARGS`` (its ``main``) as
one rank, with two Ultralytics default callbacks added first: the image files of every training
batch, per epoch, go to ``$RECORD_DIR/rank{R}.json``; the model's state after the last epoch to
``$RECORD_DIR/rank{R}.pt``. Nothing runs on import (pytest imports it for doctests).
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _recorders(folder: Path, rank: int) -> dict[str, Any]:
    seen: dict[int, list[str]] = defaultdict(list)

    def watch_batches(trainer: Any) -> None:
        preprocess = trainer.preprocess_batch

        def record(batch: dict[str, Any]) -> dict[str, Any]:
            seen[int(trainer.epoch)].extend(str(Path(f).name) for f in batch["im_file"])
            return preprocess(batch)

        trainer.preprocess_batch = record

    def save(trainer: Any) -> None:
        import torch
        from ultralytics.utils.torch_utils import unwrap_model

        (folder / f"rank{rank}.json").write_text(json.dumps(seen))
        if int(trainer.epoch) + 1 == int(trainer.epochs):
            torch.save(unwrap_model(trainer.model).state_dict(), folder / f"rank{rank}.pt")

    return {"on_pretrain_routine_end": watch_batches, "on_fit_epoch_end": save}


if __name__ == "__main__":
    from ultralytics.utils.callbacks.base import default_callbacks

    from azaion_training.cli.train import main

    recorders = _recorders(Path(os.environ["RECORD_DIR"]), int(os.environ["RANK"]))
    for event, function in recorders.items():
        default_callbacks[event].append(function)
    raise SystemExit(main(sys.argv[1:]))
