"""What every console script shares: the common options, options bound to settings, start-up and
the error boundary. A command declares its parser with `command_parser` and `setting` options and
hands a body to `run`:

    def main(argv=None):
        return run(build_parser(), argv, body, require=("queue.user",))

`run` parses the arguments, loads the settings with every bound option as an override, sets up
logging, turns `AzaionError` into exit code 1 and Ctrl-C into 130, and calls ``body(args,
settings)``.

Exit codes (scripts can trust them):

    0    success
    1    a known error (`AzaionError`): one line on stderr says what failed
    2    usage error (an unknown or abbreviated option, settings that do not load: a typo in
         config.yaml, a bad value), or a command that is not implemented yet
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NewType

from azaion_training._ultralytics import config_environment
from azaion_training.config import Settings, env_help, env_name, load_settings
from azaion_training.errors import AzaionError, ConfigError
from azaion_training.logs import setup_logging
from azaion_training.registry import Option, option_values

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


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations: ``--epoch`` is an unknown option, not ``--epochs`` (a
    prefix that one day matches two options would silently change meaning). Sub-commands'
    parsers are of this class too."""

    def __init__(self, *args: Any, allow_abbrev: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def command_parser(
    prog: str, description: str, *, env_sections: Iterable[str] = ()
) -> argparse.ArgumentParser:
    """An argument parser with the options every command takes and its environment listed."""
    parser = Parser(
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
        help=f"data root folder ({describe_setting('root_dir')})",
    )
    common.add_argument(
        "--log-json", action="store_true", default=None, help="log to stderr as JSON lines"
    )
    common.add_argument("--log-file", type=Path, metavar="PATH", help="also log to a rotating file")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log DEBUG messages on the console"
    )
    return parser


SETTING_PREFIX = "setting:"
"""Namespace attributes named ``setting:{dotted.key}`` are overrides of that setting."""

Body = Callable[[argparse.Namespace, Settings], int]
"""What a command does once its settings are loaded; returns the exit code."""


def setting(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *flags: str,
    key: str,
    help: str,
    default_text: str | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Adds an option that overrides the dotted setting ``key`` when given.

    The help ends with the setting's default and its environment variable, both read from the
    settings model, e.g. ``(default 4; INFER_EVERY)``.

    Args:
        default_text: shown instead of the default value (e.g. ``"the number of CPUs"``).
        kwargs: passed to ``add_argument`` (``type``, ``metavar``, ``action``).
    """
    return parser.add_argument(
        *flags,
        dest=SETTING_PREFIX + key,
        default=None,
        help=f"{help} ({describe_setting(key, default_text)})",
        **kwargs,
    )


def deployment_settings(parser: argparse.ArgumentParser, *, conf_help: str) -> None:
    """The options of the deployed path (SPEC 11), shared by azaion-infer and azaion-evaluate:
    frames per call, thresholds and tiles, each overriding its ``infer.*`` setting."""
    setting(
        parser,
        "--batch",
        key="infer.batch",
        type=int,
        metavar="N",
        help="frames per model call; a model built for a fixed batch uses its own",
    )
    setting(parser, "--conf", key="infer.conf", type=float, metavar="P", help=conf_help)
    setting(
        parser,
        "--iou",
        key="infer.iou",
        type=float,
        metavar="R",
        help="overlap above which the less confident box is removed",
    )
    setting(
        parser,
        "--tiles",
        key="infer.tiles",
        metavar="auto|off|WxH",
        help="cut frames into tiles: of the model input when a frame is larger than it by "
        "--tile-factor (auto), never (off), or of W x H pixels",
    )
    setting(
        parser,
        "--tile-overlap",
        key="infer.tile_overlap",
        type=float,
        metavar="F",
        help="fraction of a tile shared with its neighbour",
    )
    setting(
        parser,
        "--tile-factor",
        key="infer.tile_factor",
        type=float,
        metavar="X",
        help="with --tiles auto: tile a frame whose side exceeds the model input's by X",
    )


def describe_setting(key: str, default_text: str | None = None) -> str:
    """``default VALUE; ENV_NAME`` for a dotted setting (argparse's ``%`` escaped)."""
    if default_text is None:
        default_text = _show(functools.reduce(getattr, key.split("."), _defaults()))
    name = env_name(key)
    text = f"default {default_text}" + (f"; {name}" if name else "")
    return text.replace("%", "%%")


@functools.cache
def _defaults() -> Settings:
    return Settings()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bound_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted overrides of every `setting` option (``None`` where not given)."""
    return {
        name[len(SETTING_PREFIX) :]: value
        for name, value in vars(args).items()
        if name.startswith(SETTING_PREFIX)
    }


OPTION_PREFIX = "option:"
"""Namespace attributes named ``option:{name}`` are the options of table rows (`row_options`)."""


def row_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    rows: Mapping[str, Iterable[Option]],
) -> None:
    """Adds each option of a table's rows once; its help names the rows that take it.

    Args:
        rows: row name -> the options it takes (`registry.Option`).
    """
    takers: dict[str, tuple[Option, list[str]]] = {}
    for row, options in rows.items():
        for option in options:
            takers.setdefault(option.name, (option, []))[1].append(row)
    for option, names in takers.values():
        kwargs: dict[str, Any] = {"action": "store_true"}
        default = ""
        if option.type is not None:
            kwargs = {"type": option.type, "metavar": option.metavar, "choices": option.choices}
            default = f" (default {option.default})" if option.default is not None else ""
        parser.add_argument(
            option.flag,
            dest=OPTION_PREFIX + option.name,
            default=None,
            help=f"{', '.join(names)} only: {option.help}{default}".replace("%", "%%"),
            **kwargs,
        )


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `row_options` given on the command line (name -> value)."""
    return {
        name[len(OPTION_PREFIX) :]: value
        for name, value in vars(args).items()
        if name.startswith(OPTION_PREFIX) and value is not None
    }


def options_problem(
    row: str, options: Iterable[Option], args: argparse.Namespace, *, what: str
) -> str | None:
    """Why the `row_options` given do not fit ``row``, or ``None`` when they do."""
    try:
        option_values(row, options, given_options(args), what=what)
    except ValueError as exc:
        return str(exc)
    return None


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def queue_options(parser: argparse.ArgumentParser, *, commits: bool = False) -> None:
    """The RabbitMQ options of the queue commands; ``commits`` adds the position-saving ones."""
    queue = parser.add_argument_group("queue options")
    setting(queue, "--host", key="queue.host", metavar="HOST", help="RabbitMQ host")
    setting(queue, "--port", key="queue.port", type=int, metavar="PORT", help="streams port")
    setting(queue, "--stream", key="queue.stream", metavar="NAME", help="stream name")
    if commits:
        setting(
            queue,
            "--commit-every",
            key="queue.commit_every",
            type=int,
            metavar="N",
            help="save the position after at most N messages",
        )
        setting(
            queue,
            "--commit-interval",
            key="queue.commit_interval_s",
            type=float,
            metavar="SECONDS",
            help="... and at least every SECONDS while messages arrive",
        )


def run(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    body: Body,
    *,
    require: Iterable[str] = (),
    check: Callable[[argparse.Namespace], str | None] | None = None,
) -> int:
    """Parses ``argv``, starts up (settings with the bound options, logging), runs ``body``.

    Args:
        check: says what is wrong with arguments that parse but do not fit together; a usage
            error (exit 2) then, before anything starts.

    Returns:
        The body's exit code, or `EXIT_ERROR` / `EXIT_INTERRUPTED` (see the module docstring).
    """
    args = parser.parse_args(argv)
    problem = None if check is None else check(args)
    if problem is not None:
        parser.error(problem)
    return run_command(
        parser.prog,
        lambda: body(args, start(args, overrides=bound_settings(args), require=require)),
    )


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
    flags.update(bound_settings(args))
    flags.update(overrides or {})
    os.environ.update(OFFLINE_ENVIRONMENT)
    try:
        settings = load_settings(args.config, overrides=flags)
    except ConfigError as exc:  # a typo in config.yaml, a bad value: how the command was called
        raise SettingsUsageError(str(exc)) from exc
    for name, value in config_environment(settings.root_dir).items():
        os.environ.setdefault(name, value)  # the user's own YOLO_CONFIG_DIR wins
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


class SettingsUsageError(ConfigError):
    """The settings do not load (an unknown key, a bad value): a usage error, exit 2."""


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Runs a command body and turns its outcome into an exit code."""
    try:
        return body()
    except SettingsUsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AzaionError as exc:
        logger.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a full disk, a denied or missing path: the file and the reason
        logger.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _os_error(exc: OSError) -> str:
    """``PATH: reason`` for an operating-system error (its text alone when it names no file)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


def not_implemented(prog: str, issue: int) -> int:
    """The answer of a command whose issue has not landed yet."""
    print(f"{prog}: not implemented yet (tracked in issue #{issue})", file=sys.stderr)
    return EXIT_USAGE
