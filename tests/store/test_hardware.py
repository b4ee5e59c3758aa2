"""Hardware fingerprint: parsing on a fake Linux tree and WMI text, and this real machine."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from azaion_training.store import hardware
from azaion_training.store.hardware import HardwareInfo

PATTERN = re.compile(r"^CPU: [^\n]+\. GPU: [^\n]+\. Memory: [^\n]+\. DriveSerial: [^\n]+$")

LSPCI = """\
00:02.0 VGA compatible controller: Intel Corporation UHD Graphics 770 (rev 0c)
01:00.0 VGA compatible controller: NVIDIA Corporation AD102 [GeForce RTX 4090] (rev a1)
01:00.1 Audio device: NVIDIA Corporation AD102 High Definition Audio Controller (rev a1)
"""


def fake_tree(root: Path, *, serial: str | None) -> Path:
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: 13th Gen Intel(R) Core(TM)   i9-13900K\n"
        "processor\t: 1\nmodel name\t: 13th Gen Intel(R) Core(TM)   i9-13900K\n"
    )
    (root / "proc/meminfo").write_text("MemTotal:       65536000 kB\nMemFree: 1 kB\n")
    (root / "sys/block/loop0/device").mkdir(parents=True)
    (root / "sys/block/loop0/device/serial").write_text("LOOPSERIAL\n")
    (root / "sys/block/nvme0n1/device").mkdir(parents=True)
    if serial is not None:
        (root / "sys/block/nvme0n1/device/serial").write_text(f"  {serial}  \n")
    return root


def runner(outputs: dict[str, str]) -> hardware.Runner:
    def run(argv: Sequence[str]) -> str | None:
        return outputs.get(argv[0])

    return run


@pytest.mark.parametrize(
    ("serial", "outputs", "expected"),
    [
        # lspci names both display controllers; serial from /sys (loop devices skipped)
        (
            "S6B0NL0T123456",
            {"lspci": LSPCI},
            "CPU: 13th Gen Intel(R) Core(TM) i9-13900K. GPU: Intel Corporation UHD Graphics 770 "
            "(rev 0c), NVIDIA Corporation AD102 [GeForce RTX 4090] (rev a1). Memory: 62. "
            "DriveSerial: S6B0NL0T123456",
        ),
        # no lspci: nvidia-smi; no serial in /sys: lsblk
        (
            None,
            {"nvidia-smi": "NVIDIA GeForce RTX 4090\n", "lsblk": "rom  \ndisk WD-WX12345\n"},
            "CPU: 13th Gen Intel(R) Core(TM) i9-13900K. GPU: NVIDIA GeForce RTX 4090. "
            "Memory: 62. DriveSerial: WD-WX12345",
        ),
        # nothing to run: Unknown parts, still the same shape
        (
            None,
            {},
            "CPU: 13th Gen Intel(R) Core(TM) i9-13900K. GPU: Unknown. Memory: 62. "
            "DriveSerial: Unknown",
        ),
    ],
)
def test_linux_info_from_a_fake_tree(
    tmp_path: Path, serial: str | None, outputs: dict[str, str], expected: str
) -> None:
    info = hardware.linux_info(root=fake_tree(tmp_path, serial=serial), run=runner(outputs))
    assert info.fingerprint == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a typical answer, with Windows line ends
        (
            "CPU=AMD Ryzen 9 7950X 16-Core Processor   \r\nGPU=NVIDIA GeForce RTX 4090\r\n"
            "Memory=66943824\r\nDriveSerial=0025_38B5_31A0_1234.\r\n",
            HardwareInfo(
                cpu="AMD Ryzen 9 7950X 16-Core Processor",
                gpu="NVIDIA GeForce RTX 4090",
                memory="66943824",
                drive_serial="0025_38B5_31A0_1234.",
            ),
        ),
        # WMI answered nothing for the disk
        (
            "CPU=X\nGPU=Y\nMemory=1\nDriveSerial=\n",
            HardwareInfo(cpu="X", gpu="Y", memory="1", drive_serial="Unknown"),
        ),
        # PowerShell missing
        ("", HardwareInfo(cpu="Unknown", gpu="Unknown", memory="Unknown", drive_serial="Unknown")),
    ],
)
def test_parse_wmi_output(text: str, expected: HardwareInfo) -> None:
    assert hardware.parse_wmi_output(text) == expected


def test_windows_info_runs_powershell_without_a_shell() -> None:
    seen: list[Sequence[str]] = []

    def run(argv: Sequence[str]) -> str | None:
        seen.append(argv)
        return "CPU=C\nGPU=G\nMemory=2\nDriveSerial=S\n"

    info = hardware.windows_info(run=run)
    assert info.fingerprint == "CPU: C. GPU: G. Memory: 2. DriveSerial: S"
    assert seen[0][0] == "powershell"
    assert "Win32_Processor" in seen[0][-1]


def test_override_wins() -> None:
    assert hardware.fingerprint(override="CPU: a. GPU: b. Memory: c. DriveSerial: d") == (
        "CPU: a. GPU: b. Memory: c. DriveSerial: d"
    )


def test_this_machine_has_a_stable_fingerprint() -> None:
    first = hardware.fingerprint()
    assert PATTERN.match(first), first
    assert hardware.fingerprint() == first


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["echo", "hello"], "hello\n"),  # runs and answers
        (["false"], None),  # fails
        (["no-such-command-azaion"], None),  # missing
    ],
)
def test_run_command(argv: list[str], expected: str | None) -> None:
    assert hardware.run_command(argv) == expected
