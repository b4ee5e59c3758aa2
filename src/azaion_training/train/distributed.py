"""Training on several machines: the ranks PyTorch's launcher gives, and rank 0's lead.

``azaion-train --nnodes N --node-rank R --master HOST:PORT`` (or ``torchrun ... -m
azaion_training.cli.train``) starts one process per device on every machine (`launch`).
Each process finds its place in the launcher's environment (`launched`: ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``) and joins the process group (`Group.start`: NCCL on GPUs, gloo on
CPUs, with ``training.rank_timeout_min`` as the timeout of every collective, instead of
Ultralytics' 3 hours).

Rank 0 leads (`Group.agree`): it forms the dataset and picks the run folder; the other ranks wait
for what it decided and check the dataset's manifest digest against their own copy (a shared file
system, or a copy at the same path) before training. Ultralytics then trains with a
`DistributedSampler` (each rank its own disjoint part of every epoch) through the trainer at the
Ultralytics boundary (`azaion_training._ultralytics.launched_trainer`). Only rank 0 writes the
run folder and checkpoints; after training it leaves the group (`Group.alone`) to score, gate,
export and publish as a single process, while the others exit.

A rank that dies breaks the collective the others are in: gloo fails at once, NCCL at the
timeout; either way their job ends with one error line and exit 1, and the launcher ends the
machine's other processes. Nothing is installed or published before training has finished on
every rank.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azaion_training._ultralytics import as_single_process, import_before_group
from azaion_training.dataset.formation import MANIFEST
from azaion_training.errors import AzaionError, ConfigError, DatasetError, TrainingError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT = 29500
"""The launcher's port on the master machine when ``--master`` names none (torchrun's own)."""
RUN_ID = "azaion-train"
_MASTER = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")
"""The rendezvous id: the same on every machine of one run."""


@dataclass(frozen=True)
class Launch:
    """This process's place in a multi-process run, from the launcher's environment."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int

    @property
    def leader(self) -> bool:
        """True on rank 0: it forms the dataset and writes the run, the gate, export, publish."""
        return self.rank == 0


def launched(environ: Mapping[str, str] | None = None) -> Launch | None:
    """This process's `Launch` when a launcher (torchrun) started it with more than one rank.

    Example:
        >>> launched({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"})
        Launch(rank=1, local_rank=0, world_size=2, local_world_size=1)
        >>> launched({}) is None
        True
    """
    environ = os.environ if environ is None else environ
    world_size = int(environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    return Launch(
        rank=int(environ["RANK"]),
        local_rank=int(environ["LOCAL_RANK"]),
        world_size=world_size,
        local_world_size=int(environ.get("LOCAL_WORLD_SIZE", "1")),
    )


@dataclass(frozen=True)
class Master:
    """The master machine's address, ``HOST:PORT``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Master:
        """``HOST[:PORT]`` (an IPv6 host in brackets).

        Raises:
            ConfigError: no host, or a port outside 1..65535.
        """
        match = _MASTER.match(text)
        port = int(match["port"] or DEFAULT_PORT) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(
                f"--master {text!r}: expected HOST:PORT, e.g. 10.0.0.1:{DEFAULT_PORT}"
            )
        host = match["v6"] or match["host"]
        return cls(host, port)


def launch_arguments(
    *,
    nnodes: int,
    node_rank: int,
    master: Master,
    nproc_per_node: int,
    rendezvous: str,
    arguments: Sequence[str],
) -> list[str]:
    """torchrun's arguments that run ``azaion-train ARGUMENTS`` as this machine's ranks.

    ``rendezvous`` is ``static`` (``--node-rank`` is the machine's rank: rank 0 is the machine
    started with ``--node-rank 0``, whose launcher serves the c10d store at ``--master``) or
    ``c10d`` (torchrun's dynamic rendezvous at ``--master``; it ignores ``--node-rank`` and
    orders the machines by host name, so rank 0 is the first host name in that order).

    Example:
        >>> " ".join(launch_arguments(nnodes=2, node_rank=1, master=Master("10.0.0.1", 29500),
        ...     nproc_per_node=1, rendezvous="static", arguments=["--epochs", "3"]))
        ... # doctest: +NORMALIZE_WHITESPACE
        '--nnodes 2 --nproc-per-node 1 --rdzv-backend static --master-addr 10.0.0.1
         --master-port 29500 --node-rank 1 --max-restarts 0 -m azaion_training.cli.train
         --epochs 3'
    """
    if rendezvous == "static":
        meeting = ["--rdzv-backend", "static", "--master-addr", master.host]
        meeting += ["--master-port", str(master.port), "--node-rank", str(node_rank)]
    else:
        meeting = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"{master.host}:{master.port}"]
        meeting += ["--rdzv-id", RUN_ID]
    return [
        "--nnodes",
        str(nnodes),
        "--nproc-per-node",
        str(nproc_per_node),
        *meeting,
        "--max-restarts",
        "0",
        "-m",
        "azaion_training.cli.train",
        *arguments,
    ]


def launch(arguments: Sequence[str], *, quiet: bool = True) -> int:
    """Runs torchrun (``torch.distributed.run``) with ``arguments`` in this process: it starts
    this machine's ranks and returns when they all have ended.

    Returns:
        0 when every rank of this machine succeeded; 1 when one ended with exit 1 (a known
        error: it printed its own line). Any other failure (a signal, a crash) raises.
        ``quiet`` keeps torchrun's own log lines (the ranks it stops) off the console.

    Raises:
        TrainingError: a rank failed, or the machines did not meet.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    logger.info("launcher: torchrun %s", shlex.join(arguments))
    if quiet:
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("torch.distributed.elastic"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
    config, command, command_arguments = config_from_args(
        get_args_parser().parse_args(list(arguments))
    )
    try:
        elastic_launch(config, command)(*command_arguments)  # type: ignore[arg-type]
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode == 1:  # our known error: the rank printed its own line
            return 1
        raise TrainingError(f"rank {rank} failed: {_failure(failure.exitcode)}") from exc
    except Exception as exc:  # the rendezvous raises RendezvousError and others
        raise TrainingError(f"the machines did not meet: {type(exc).__name__}: {exc}") from exc
    return 0


def _failure(exitcode: int) -> str:
    if exitcode < 0:
        import signal

        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def dataset_digest(data_yaml: Path) -> str:
    """The SHA-256 of a dataset's manifest (of its ``data.yaml`` when it has none)."""
    manifest = data_yaml.parent / MANIFEST
    try:
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    except FileNotFoundError:
        pass
    try:
        return hashlib.sha256(data_yaml.read_bytes()).hexdigest()
    except OSError as exc:
        raise DatasetError(f"cannot read {data_yaml}: {exc}") from exc


def check_dataset(data_yaml: Path, digest: str, *, rank: int) -> None:
    """Checks that this machine sees rank 0's dataset at the same path, the same.

    Raises:
        DatasetError: the dataset is missing here, or differs from rank 0's.
    """
    try:
        mine = dataset_digest(data_yaml)
    except DatasetError as exc:
        raise DatasetError(
            f"rank {rank}: rank 0's dataset is not on this machine ({exc}); share the data "
            "root, or copy the dataset to the same path"
        ) from exc
    if mine != digest:
        raise DatasetError(
            f"rank {rank}: the dataset at {data_yaml.parent} differs from rank 0's (manifest "
            f"sha256 {mine[:12]} here, {digest[:12]} there)"
        )


class Group:
    """The process group of a launched run (one per process).

    Example:
        >>> group = Group(launch, timeout=dt.timedelta(minutes=10), device=None)  # doctest: +SKIP
        >>> group.start()  # doctest: +SKIP
        >>> plan = group.agree(form_and_pick)  # doctest: +SKIP
    """

    def __init__(self, launch: Launch, *, timeout: dt.timedelta, device: str | None) -> None:
        self.launch = launch
        self.timeout = timeout
        self.device = device

    @property
    def cuda(self) -> bool:
        """True when this rank trains on a GPU (``device`` not ``cpu``, and CUDA present)."""
        import torch

        return self.device != "cpu" and torch.cuda.is_available()

    @property
    def backend(self) -> str:
        """``nccl`` on GPUs, ``gloo`` on CPUs."""
        return "nccl" if self.cuda else "gloo"

    def trainer_device(self) -> str:
        """The ``device`` to give Ultralytics: ``cpu``, or this machine's GPUs (one per rank).

        Raises:
            ConfigError: ``training.device`` lists another number of GPUs than ranks per machine.
        """
        if not self.cuda:
            return "cpu"
        import torch

        devices = (self.device or "").split(",") if self.device else []
        if not devices:
            devices = [str(index) for index in range(self.launch.local_world_size)]
        if len(devices) != self.launch.local_world_size or len(devices) > torch.cuda.device_count():
            raise ConfigError(
                f"training.device {self.device!r} names {len(devices)} GPUs for "
                f"{self.launch.local_world_size} ranks per machine; give one GPU per rank "
                "(--nproc-per-node)"
            )
        return ",".join(devices)

    def start(self) -> None:
        """Joins the process group (waits up to the timeout for every rank)."""
        import torch
        from torch import distributed as dist

        import_before_group()
        if self.cuda:
            os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")  # a timeout raises, here
            index = int(self.trainer_device().split(",")[self.launch.local_rank])
            torch.cuda.set_device(index)
        logger.info(
            "rank %d of %d (local %d) joins the %s process group (timeout %s)",
            self.launch.rank,
            self.launch.world_size,
            self.launch.local_rank,
            self.backend,
            self.timeout,
        )
        try:
            dist.init_process_group(backend=self.backend, timeout=self.timeout)
        except (RuntimeError, ValueError) as exc:  # c10d raises DistStoreError (a RuntimeError)
            raise TrainingError(f"rank {self.launch.rank}: cannot join the others: {exc}") from exc

    def agree(self, make: Callable[[], T]) -> T:
        """Rank 0 calls ``make`` and every rank gets its value (or rank 0's error, as a
        `TrainingError`); the others wait for it up to the timeout."""

        message: list[Any] = [None]
        if self.launch.leader:
            try:
                message = [("ok", make())]
            except AzaionError as exc:
                message = [("error", str(exc))]
                self._broadcast(message)
                raise
            self._broadcast(message)
        else:
            self._broadcast(message)
        kind, value = message[0]
        if kind == "error":
            raise TrainingError(f"rank 0 failed: {value}")
        return value  # type: ignore[no-any-return]

    def alone(self) -> None:
        """Leaves the group: rank 0 scores, exports and publishes after training as a single
        process (`azaion_training._ultralytics.as_single_process`)."""
        self.close()
        as_single_process()

    def close(self) -> None:
        """Leaves the process group (if still in one)."""
        from torch import distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def _broadcast(self, message: list[Any]) -> None:
        from torch import distributed as dist

        try:
            dist.broadcast_object_list(message, src=0)
        except (RuntimeError, ValueError) as exc:
            raise TrainingError(f"rank {self.launch.rank}: lost the others: {exc}") from exc
