"""What every console script shares: the common options, start-up and the error boundary.

Exit codes (scripts can trust them):

    0    success
    1    a known error (`AzaionError`): one line on stderr says what failed
    2    usage error, or a command that is not implemented yet
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NewType

from azaion_training.config import Settings, env_help, load_settings
from azaion_training.errors import AzaionError
from azaion_training.logs import setup_logging

ExitCode = NewType("ExitCode", int)
EXIT_OK = ExitCode(0)
EXIT_ERROR = ExitCode(1)
EXIT_USAGE = ExitCode(2)
EXIT_INTERRUPTED = ExitCode(130)

logger = logging.getLogger(__name__)

OFFLINE_ENVIRONMENT = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    "NO_ALBUMENTATIONS_UPDATE": "1",
}
"""Set at start-up, before Ultralytics or Albumentations is imported: no connectivity probe,
telemetry, package install or version check. The process boundary is the one place that sets
third-party switches in the environment."""


def command_parser(
    prog: str, description: str, *, env_sections: Iterable[str] = ()
) -> argparse.ArgumentParser:
    """An argument parser with the options every command takes and its environment listed."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=env_help("", "log", *env_sections),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = parser.add_argument_group("common options")
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config.yaml to read (default: $AZAION_CONFIG, else ./config.yaml if present)",
    )
    common.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="data root folder (default /azaion; AZAION_ROOT_DIR)",
    )
    common.add_argument(
        "--log-json", action="store_true", default=None, help="log to stderr as JSON lines"
    )
    common.add_argument("--log-file", type=Path, metavar="PATH", help="also log to a rotating file")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log DEBUG messages on the console"
    )
    return parser


def start(
    args: argparse.Namespace,
    *,
    overrides: Mapping[str, Any] | None = None,
    require: Iterable[str] = (),
) -> Settings:
    """Loads the settings (common options, ``overrides``), sets up logging, checks ``require``."""
    flags: dict[str, Any] = {
        "root_dir": args.root,
        "log.json_lines": args.log_json,
        "log.file": args.log_file,
        "log.level": "DEBUG" if args.verbose else None,
    }
    flags.update(overrides or {})
    os.environ.update(OFFLINE_ENVIRONMENT)
    settings = load_settings(args.config, overrides=flags)
    setup_logging(
        level=settings.log.level,
        json_lines=settings.log.json_lines,
        file=settings.log.file,
        file_max_bytes=settings.log.file_max_bytes,
        file_backups=settings.log.file_backups,
        secrets=settings.secret_values(),
    )
    settings.require(*require)
    return settings


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Runs a command body and turns its outcome into an exit code."""
    try:
        return body()
    except AzaionError as exc:
        logger.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def not_implemented(prog: str, issue: int) -> int:
    """The answer of a command whose issue has not landed yet."""
    print(f"{prog}: not implemented yet (tracked in issue #{issue})", file=sys.stderr)
    return EXIT_USAGE
