"""The hardware fingerprint that binds API downloads to a machine (SPEC section 9).

    CPU: {cpu}. GPU: {gpu}. Memory: {memory}. DriveSerial: {serial}

Linux reads ``/proc/cpuinfo``, ``/proc/meminfo`` (memory in whole GiB, as ``free -g`` shows it),
the GPU names from ``lspci`` (else ``nvidia-smi``) and the first disk's serial from ``/sys`` (else
``lsblk``). Windows asks WMI through PowerShell (memory in KiB, ``TotalVisibleMemorySize``).
Commands run without a shell and with a timeout; a part that cannot be read is ``Unknown``.

What matters is that the string stays the same on one machine, because the platform derives the
download key from it. Where it cannot be read reliably (containers, CI, tests), set it with
``security.hardware_fingerprint`` (``AZAION_HARDWARE_FINGERPRINT``) and `fingerprint` returns it
unchanged.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

UNKNOWN = "Unknown"
COMMAND_TIMEOUT_S = 10.0

Runner = Callable[[Sequence[str]], "str | None"]
"""Runs a command (no shell) and returns its stdout, or ``None`` if it is missing or fails."""

_VIRTUAL_DISKS = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")

_WMI_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'SilentlyContinue'",
        "'CPU=' + ((Get-CimInstance Win32_Processor).Name -join ', ')",
        "'GPU=' + ((Get-CimInstance Win32_VideoController).Name -join ', ')",
        "'Memory=' + (Get-CimInstance Win32_OperatingSystem).TotalVisibleMemorySize",
        "'DriveSerial=' + (Get-CimInstance Win32_DiskDrive | Sort-Object Index"
        " | Select-Object -First 1).SerialNumber",
    ]
)


@dataclass(frozen=True)
class HardwareInfo:
    """The four parts of a fingerprint, each a single line with runs of spaces collapsed."""

    cpu: str
    gpu: str
    memory: str
    drive_serial: str

    @property
    def fingerprint(self) -> str:
        """``CPU: {cpu}. GPU: {gpu}. Memory: {memory}. DriveSerial: {serial}``."""
        return (
            f"CPU: {self.cpu}. GPU: {self.gpu}. Memory: {self.memory}. "
            f"DriveSerial: {self.drive_serial}"
        )


def fingerprint(*, override: str | None = None) -> str:
    """This machine's fingerprint string, or ``override`` when it is set (not empty)."""
    if override:
        return override
    info = windows_info() if sys.platform == "win32" else linux_info()
    logger.debug("hardware: %s", info.fingerprint)
    return info.fingerprint


def run_command(argv: Sequence[str]) -> str | None:
    """The default `Runner`: ``subprocess.run`` without a shell, with a timeout."""
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("hardware: %s did not run: %s", argv[0], exc)
        return None
    if result.returncode != 0:
        logger.debug("hardware: %s exited with %d", argv[0], result.returncode)
        return None
    return result.stdout


def linux_info(*, root: Path = Path("/"), run: Runner = run_command) -> HardwareInfo:
    """Reads the fingerprint parts on Linux.

    Args:
        root: the filesystem root holding ``proc`` and ``sys`` (a fake tree in tests).
        run: the command runner for ``lspci``, ``nvidia-smi`` and ``lsblk``.
    """
    return HardwareInfo(
        cpu=_linux_cpu(root),
        gpu=_linux_gpu(run),
        memory=_linux_memory(root),
        drive_serial=_linux_drive_serial(root, run),
    )


def windows_info(*, run: Runner = run_command) -> HardwareInfo:
    """Reads the fingerprint parts on Windows through PowerShell and WMI."""
    argv = ["powershell", "-NoProfile", "-NonInteractive", "-Command", _WMI_SCRIPT]
    return parse_wmi_output(run(argv) or "")


def parse_wmi_output(text: str) -> HardwareInfo:
    """Parses the ``KEY=value`` lines the PowerShell script prints."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value
    return HardwareInfo(
        cpu=_clean(values.get("CPU")),
        gpu=_clean(values.get("GPU")),
        memory=_clean(values.get("Memory")),
        drive_serial=_clean(values.get("DriveSerial")),
    )


def parse_lspci_gpus(text: str) -> list[str]:
    """The display controllers in ``lspci`` output: the text after the class name."""
    names = []
    for line in text.splitlines():
        if "VGA compatible controller" in line or "3D controller" in line:
            parts = line.split(":", 2)
            if len(parts) == 3:
                names.append(parts[2])
    return [_clean(name) for name in names]


def _linux_cpu(root: Path) -> str:
    text = _read(root / "proc/cpuinfo")
    for field in ("model name", "Hardware", "Model"):
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == field and value.strip():
                return _clean(value)
    return UNKNOWN


def _linux_gpu(run: Runner) -> str:
    names = parse_lspci_gpus(run(["lspci"]) or "")
    if not names:
        output = run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]) or ""
        names = [_clean(line) for line in output.splitlines() if line.strip()]
    return ", ".join(names) or UNKNOWN


def _linux_memory(root: Path) -> str:
    for line in _read(root / "proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return str(int(fields[1]) // (1024 * 1024))
    return UNKNOWN


def _linux_drive_serial(root: Path, run: Runner) -> str:
    block = root / "sys/block"
    disks = sorted(p.name for p in block.iterdir()) if block.is_dir() else []
    for disk in disks:
        if not disk.startswith(_VIRTUAL_DISKS):
            serial = _clean(_read(block / disk / "device/serial"))
            if serial != UNKNOWN:
                return serial
    output = run(["lsblk", "--nodeps", "--noheadings", "--output", "TYPE,SERIAL"]) or ""
    for line in output.splitlines():
        kind, _, serial = line.strip().partition(" ")
        if kind == "disk" and serial.strip():
            return _clean(serial)
    return UNKNOWN


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def _clean(value: str | None) -> str:
    text = " ".join((value or "").split())
    return text or UNKNOWN
