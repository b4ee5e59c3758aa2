"""`scripts/uv_sources.py`: uv gets the package sources pip is configured with."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "uv_sources.py"


def _uv_arguments(config: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], input=config, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_pips_indexes_find_links_and_constraints_become_uv_flags() -> None:
    config = (
        ":env:.default-timeout='180'\n"
        "global.constraint='/etc/xdg/pip/constraints.txt'\n"
        "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'\n"
        "install.find-links='/opt/wheels'\n"
        "global.index-url='https://mirror.example/simple'\n"
        "global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
    )
    assert _uv_arguments(config) == [
        "--constraint", "/etc/xdg/pip/constraints.txt",
        "--extra-index-url", "file:///opt/a/simple",
        "--extra-index-url", "file:///opt/b/simple",
        "--find-links", "/opt/wheels",
        "--index-url", "https://mirror.example/simple",
    ]  # fmt: skip


def test_a_pip_variable_wins_over_the_files_as_in_pip() -> None:
    config = "global.find-links='/opt/old'\n:env:.find-links='/opt/wheels /opt/more'\n"
    assert _uv_arguments(config) == ["--find-links", "/opt/wheels", "--find-links", "/opt/more"]


def test_no_pip_configuration_gives_no_arguments() -> None:
    assert _uv_arguments("") == []
