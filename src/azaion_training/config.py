"""The one configuration object, and the only reader of the environment.

Sources, in rising priority (a later one overrides an earlier one, key by key):

1. built-in defaults (the field defaults below);
2. ``config.yaml`` (``--config PATH``, else ``$AZAION_CONFIG``, else ``./config.yaml`` if present);
3. ``cdn.yaml`` (``$AZAION_CDN_CONFIG``, else ``cdn.yaml`` beside the config file or in the
   working folder), which fills the ``cdn`` section;
4. a ``.env`` file in the working folder, then the process environment (see `ENVIRONMENT`);
5. command-line flags, passed as dotted keys (``{"training.epochs": 3}``).

Secrets are `pydantic.SecretStr`: they print as ``**********`` in ``repr`` and logs. A setting that
a command cannot run without is checked with `Settings.require`, which fails with one line naming
the setting and the environment variable that sets it.

Example:
    >>> settings = load_settings(environ={"TRAINING_EPOCHS": "3"}, env_file=None, config_path=None)
    >>> settings.training.epochs
    3
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from azaion_training.errors import ConfigError
from azaion_training.images import ToRGB


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, use_attribute_docstrings=True)


class LogSettings(_Section):
    """Where logs go and in which form."""

    level: str = "INFO"
    json_lines: bool = False
    file: Path | None = None
    file_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    file_backups: int = Field(default=5, ge=0)


class QueueSettings(_Section):
    """The RabbitMQ stream the annotation platform publishes to."""

    host: str = "127.0.0.1"
    """RabbitMQ host."""
    port: int = Field(default=5552, gt=0, lt=65536)
    """RabbitMQ streams port (the stream protocol, not AMQP 0-9-1)."""
    user: str | None = None
    """RabbitMQ user."""
    password: SecretStr | None = None
    """RabbitMQ password."""
    stream: str = "azaion-annotations"
    """The stream of annotation events."""
    vhost: str = "/"
    """RabbitMQ virtual host."""
    commit_every: int = Field(default=200, gt=0)
    """Persist the position after at most this many messages (fsync of their files first)."""
    commit_interval_s: float = Field(default=1.0, gt=0)
    """... and at least this often, in seconds, while messages arrive."""
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    """First wait before reconnecting after the connection is lost; doubles per failure."""
    reconnect_max_s: float = Field(default=30.0, gt=0)
    """Longest wait between reconnection attempts."""
    heartbeat_s: int = Field(default=60, ge=0)
    """Stream protocol heartbeat asked of the server, in seconds (0: none)."""
    probe_interval_s: float = Field(default=30.0, gt=0)
    """While no message arrives, check the connection this often, in seconds."""
    position_check_s: float = Field(default=10.0, gt=0)
    """Wait this long for the message at the stored position; none: past the end, it stops."""
    frame_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024 * 1024)
    """Largest frame asked of the server; the server's own limit wins when smaller."""
    tls: bool = False
    """Connect to the stream over TLS (the server's ``stream.listeners.ssl`` port)."""
    tls_ca_bundle: Path | None = None
    """CA certificates (PEM) that sign the server's certificate; the system's when unset."""
    tls_cert: Path | None = None
    """Client certificate (PEM) for servers that ask for one."""
    tls_key: Path | None = None
    """Private key (PEM) of ``tls_cert``."""
    tls_verify: bool = True
    """Verify the server's certificate and host name (turn it off on a test bench only)."""
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest message body accepted, after gzip inflation."""
    max_inflate_ratio: float = Field(default=20.0, ge=1)
    """A gzip body may inflate to at most this many times its compressed size."""
    max_names: int = Field(default=100_000, gt=0)
    """Most annotation names in one Validated or Deleted message."""
    max_image_megapixels: float = Field(default=100.0, gt=0)
    """Largest image accepted (width x height, in millions), read from its header."""
    rejected_max_count: int = Field(default=10_000, gt=0)
    """Most messages kept in ``queue-rejected/``; the oldest are pruned beyond it."""
    rejected_max_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    """Most bytes kept in ``queue-rejected/``; the oldest are pruned beyond it."""


class AugmentSettings(_Section):
    """The augmentation daemon."""

    variants: int = Field(default=7, ge=0)
    min_visible_fraction: float = Field(default=0.3, ge=0, le=1)
    """A variant drops a box when less than this fraction of its own area stays in the image."""
    min_box_px: float = Field(default=2.0, ge=0)
    """A variant drops a box that ends thinner than this many pixels (originals keep every box)."""
    interval_s: float = Field(default=300.0, gt=0)
    workers: int | None = Field(default=None, gt=0)
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    max_image_megapixels: float = Field(default=100.0, gt=0)
    """Largest source image (width x height, in millions), from its header; larger: quarantined."""


class DatasetSettings(_Section):
    """Dataset formation: the split ratios (they must add up to 1) and the training tiles."""

    train_ratio: float = Field(default=0.7, ge=0, le=1)
    valid_ratio: float = Field(default=0.2, gt=0, le=1)
    test_ratio: float = Field(default=0.1, ge=0, le=1)
    tiles: str = Field(default="auto", pattern=r"^(auto|off|[1-9][0-9]*x[1-9][0-9]*)$")
    """Train images larger than a tile also enter as tiles at native resolution: ``auto``
    (tiles of ``training.imgsz`` for images larger than it by ``tile_factor``), ``off``, or
    ``WxH`` (tiles of that size for every larger image). Valid and test keep whole frames."""
    tile_overlap: float = Field(default=0.2, ge=0, lt=1)
    """Fraction of a training tile shared with its neighbour."""
    tile_factor: float = Field(default=1.5, ge=1)
    """For ``auto``: image side / tile side above which an image is tiled."""
    tile_empty_share: float = Field(default=0.1, ge=0, le=1)
    """Share of tiles without any box kept as background (chosen by a hash of the tile's name)."""

    @model_validator(mode="after")
    def _ratios_add_up(self) -> DatasetSettings:
        total = self.train_ratio + self.valid_ratio + self.test_ratio
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train, valid and test ratios add up to {total:g}, not 1")
        return self


class TrainingSettings(_Section):
    """Ultralytics training parameters."""

    model: str = "yolo11m.yaml"
    epochs: int = Field(default=120, gt=0)
    batch: int = Field(default=11, gt=0)
    imgsz: int = Field(default=1280, gt=0)
    save_period: int = 1
    device: str | None = None
    workers: int = Field(default=8, ge=0)
    patience: int = Field(default=100, ge=0)
    amp: bool = True
    plots: bool = True
    rank_timeout_min: float = Field(default=10.0, gt=0)
    """Multi-machine training: how long a rank waits for the others in any collective (joining,
    rank 0's dataset, every step) before it gives up with exit 1."""
    gate_tolerance: float = Field(default=0.005, ge=0, le=1)
    """A candidate replaces the current model unless its test mAP50-95 is lower by more."""
    extra: dict[str, Any] = Field(default_factory=dict)


class ExportSettings(_Section):
    """Model export: ONNX, TensorRT and RKNN."""

    imgsz: int = Field(default=1280, gt=0)
    batch: int = Field(default=4, gt=0)
    half: bool = True
    int8: bool = False
    workspace_fraction: float = Field(default=0.5, gt=0, le=1)
    calibration_images: int = Field(default=200, gt=0)
    rknn_venv: Path | None = None
    rknn_platform: str = "rk3588"


class InferSettings(_Section):
    """Video inference."""

    every: int = Field(default=4, gt=0)
    batch: int = Field(default=4, gt=0)
    conf: float = Field(default=0.3, ge=0, le=1)
    iou: float = Field(default=0.3, ge=0, le=1)
    tiles: str = Field(default="auto", pattern=r"^(auto|off|[1-9][0-9]*x[1-9][0-9]*)$")
    """``auto``: tiles of the model input when a frame exceeds it by ``tile_factor``; ``off``:
    whole frames letterboxed; ``WxH``: tiles of that size (each letterboxed into the input)."""
    tile_overlap: float = Field(default=0.2, ge=0, lt=1)
    """Fraction of a tile shared with its neighbour."""
    tile_factor: float = Field(default=1.5, ge=1)
    """For ``auto``: frame side / model input side above which a frame is tiled."""
    tile_full_frame: bool = True
    """Also run each tiled frame whole (letterboxed), for objects larger than a tile."""
    tile_match: float = Field(default=0.5, gt=0, le=1)
    """Boxes of one class from different tiles whose intersection over the smaller box is at
    least this are merged into one (their union)."""


class EvaluateSettings(_Section):
    """Scoring a model as deployed (``azaion-evaluate``, the training gate); the deployed
    thresholds are ``infer.conf`` and ``infer.iou``."""

    score_conf: float = Field(default=0.001, ge=0, le=1)
    """Lowest confidence of the detections that AP is computed from."""
    gate_metric: Literal["map50_95", "map50"] = "map50_95"
    """The score on which the gate compares the candidate with the current model."""
    gate_bucket: str | None = "under_32"
    """Size bucket whose mAP50-95 must not be worse either (empty: no second condition)."""
    gate_min_objects: int = Field(default=10, gt=0)
    """The second condition applies when the split has at least this many objects that size."""


class ImageSettings(_Section):
    """How an image becomes the model's 8-bit 3-channel input (`azaion_training.images`): in the
    augmenter, the visualiser, the converter (``--queue-ready``), still-frame inference and INT8
    calibration alike."""

    bands: list[int] | None = None
    """1-based bands for red, green, blue in the file's order (one number: grey); by default
    1 band is grey and 3 or more give bands 1, 2, 3 (an RGBA or RGB+NIR GeoTIFF: its RGB)."""
    percentiles: tuple[float, float] = (2.0, 98.0)
    """Images that are not 8-bit: these percentiles of the chosen bands become 0 and 255."""
    fixed_range: tuple[float, float] | None = None
    """Instead of the percentiles, this fixed range becomes 0..255 (e.g. ``[0, 4095]``)."""

    @field_validator("bands", mode="before")
    @classmethod
    def _bands_text(cls, value: Any) -> Any:
        """``AZAION_IMAGE_BANDS=4,3,2`` (text from the environment) as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("bands")
    @classmethod
    def _bands_count(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) not in (1, 3) or min(value) < 1):
            raise ValueError("give one or three band numbers from 1, e.g. 1,2,3")
        return value

    @model_validator(mode="after")
    def _valid(self) -> ImageSettings:
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError("percentiles must be low < high within 0..100")
        if self.fixed_range is not None and not self.fixed_range[0] < self.fixed_range[1]:
            raise ValueError("fixed_range must be low < high")
        return self

    def rule(self) -> ToRGB:
        """These settings as the conversion rule of `azaion_training.images`."""
        return ToRGB(
            bands=tuple(self.bands) if self.bands else None,
            percentiles=self.percentiles,
            fixed_range=self.fixed_range,
        )


class ConvertSettings(_Section):
    """``azaion-convert``: what happens to boxes whose class the class map does not know."""

    unknown_classes: Literal["skip", "error"] = "skip"
    edge_tolerance_px: float = Field(default=0.5, ge=0)


class ApiSettings(_Section):
    """The Azaion REST API (model distribution). Without ``url`` the local store is used."""

    url: str | None = None
    email: str | None = None
    password: SecretStr | None = None
    ca_bundle: Path | None = None
    allow_http: bool = False
    """Accept a plain ``http://`` URL (loopback tests only); otherwise ``https://`` is required."""
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    models_folder: str = "models"
    cdn_config: str | None = None
    """``folder/name`` of an encrypted ``cdn.yaml`` on the API; when set it fills ``cdn``."""


class CdnSettings(_Section):
    """The S3-compatible CDN; usually filled from ``cdn.yaml``."""

    host: str | None = None
    downloader_access_key: SecretStr | None = None
    downloader_access_secret: SecretStr | None = None
    uploader_access_key: SecretStr | None = None
    uploader_access_secret: SecretStr | None = None
    bucket: str = "models"
    cache_dir: Path | None = None
    region: str = "us-east-1"
    ca_bundle: Path | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0)


class StoreSettings(_Section):
    """The model store: how many versions it keeps and what a fetch accepts."""

    keep_versions: int = Field(default=5, ge=1)
    """Versions of each model kept; after a publish the oldest beyond this are deleted."""
    allow_unverified: bool = False
    """Accept a model with no recorded SHA-256 (logged as a warning on every use)."""


class SecuritySettings(_Section):
    """Model key and hardware identity."""

    model_key: SecretStr | None = None
    model_key_file: Path | None = None
    hardware_fingerprint: str | None = None


class Settings(_Section):
    """Every setting of the toolkit. Build it with `load_settings`."""

    root_dir: Path = Path("/azaion")
    data_dir: str = "data"
    data_seed_dir: str = "data-seed"
    data_deleted_dir: str = "data_deleted"
    classes: Path | None = None
    """The class table, a ``classes.json`` (``Id``, ``Name``, ``ShortName``, ``Color``); the
    platform's 17 classes x 3 weather modes when not set."""
    log: LogSettings = Field(default_factory=LogSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    infer: InferSettings = Field(default_factory=InferSettings)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    convert: ConvertSettings = Field(default_factory=ConvertSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    cdn: CdnSettings = Field(default_factory=CdnSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    def get(self, key: str) -> Any:
        """The value of a dotted key such as ``"queue.password"``."""
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

    def require(self, *keys: str) -> None:
        """Checks that every dotted key has a value.

        Raises:
            ConfigError: one line naming the first missing setting and how to set it.
        """
        for key in keys:
            value = self.get(key)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise ConfigError(f"missing setting {key}: {how_to_set(key)}")

    def secret_values(self) -> Iterator[str]:
        """Every non-empty secret, for the log filter that scrubs them."""
        yield from _secret_values(self)


ENVIRONMENT: dict[str, str] = {
    "AZAION_ROOT_DIR": "root_dir",
    "AZAION_DATA_DIR": "data_dir",
    "AZAION_DATA_SEED_DIR": "data_seed_dir",
    "AZAION_DATA_DELETED_DIR": "data_deleted_dir",
    "AZAION_CLASSES": "classes",
    "AZAION_LOG_LEVEL": "log.level",
    "AZAION_LOG_JSON": "log.json_lines",
    "AZAION_LOG_FILE": "log.file",
    "RABBITMQ_HOST": "queue.host",
    "RABBITMQ_PORT": "queue.port",
    "RABBITMQ_USER": "queue.user",
    "RABBITMQ_PASSWORD": "queue.password",
    "RABBITMQ_QUEUE_NAME": "queue.stream",
    "RABBITMQ_VHOST": "queue.vhost",
    "RABBITMQ_TLS": "queue.tls",
    "RABBITMQ_TLS_CA_BUNDLE": "queue.tls_ca_bundle",
    "RABBITMQ_TLS_CERT": "queue.tls_cert",
    "RABBITMQ_TLS_KEY": "queue.tls_key",
    "RABBITMQ_TLS_VERIFY": "queue.tls_verify",
    "AZAION_QUEUE_MAX_IMAGE_MEGAPIXELS": "queue.max_image_megapixels",
    "AZAION_QUEUE_COMMIT_EVERY": "queue.commit_every",
    "AZAION_QUEUE_COMMIT_INTERVAL": "queue.commit_interval_s",
    "AZAION_AUGMENT_INTERVAL": "augment.interval_s",
    "AZAION_AUGMENT_WORKERS": "augment.workers",
    "AZAION_AUGMENT_MAX_IMAGE_MEGAPIXELS": "augment.max_image_megapixels",
    "AZAION_MIN_VISIBLE_FRACTION": "augment.min_visible_fraction",
    "AZAION_MIN_BOX_PX": "augment.min_box_px",
    "TRAINING_MODEL": "training.model",
    "TRAINING_EPOCHS": "training.epochs",
    "TRAINING_BATCH_SIZE": "training.batch",
    "TRAINING_IMGSZ": "training.imgsz",
    "TRAINING_DEVICE": "training.device",
    "TRAINING_WORKERS": "training.workers",
    "TRAINING_PATIENCE": "training.patience",
    "TRAINING_GATE_TOLERANCE": "training.gate_tolerance",
    "TRAINING_RANK_TIMEOUT_MIN": "training.rank_timeout_min",
    "TRAINING_AMP": "training.amp",
    "EXPORT_IMGSZ": "export.imgsz",
    "EXPORT_BATCH": "export.batch",
    "AZAION_RKNN_VENV": "export.rknn_venv",
    "INFER_EVERY": "infer.every",
    "INFER_BATCH": "infer.batch",
    "INFER_CONF": "infer.conf",
    "INFER_IOU": "infer.iou",
    "INFER_TILES": "infer.tiles",
    "INFER_TILE_OVERLAP": "infer.tile_overlap",
    "AZAION_EVALUATE_SCORE_CONF": "evaluate.score_conf",
    "AZAION_GATE_METRIC": "evaluate.gate_metric",
    "AZAION_GATE_BUCKET": "evaluate.gate_bucket",
    "AZAION_GATE_MIN_OBJECTS": "evaluate.gate_min_objects",
    "AZAION_IMAGE_BANDS": "images.bands",
    "AZAION_CONVERT_UNKNOWN": "convert.unknown_classes",
    "AZAION_API_URL": "api.url",
    "AZAION_API_EMAIL": "api.email",
    "AZAION_API_PASSWORD": "api.password",
    "AZAION_API_CA_BUNDLE": "api.ca_bundle",
    "AZAION_API_ALLOW_HTTP": "api.allow_http",
    "AZAION_API_CDN_CONFIG": "api.cdn_config",
    "AZAION_CDN_HOST": "cdn.host",
    "AZAION_CDN_BUCKET": "cdn.bucket",
    "AZAION_CDN_DOWNLOADER_ACCESS_KEY": "cdn.downloader_access_key",
    "AZAION_CDN_DOWNLOADER_ACCESS_SECRET": "cdn.downloader_access_secret",
    "AZAION_CDN_UPLOADER_ACCESS_KEY": "cdn.uploader_access_key",
    "AZAION_CDN_UPLOADER_ACCESS_SECRET": "cdn.uploader_access_secret",
    "AZAION_CDN_CACHE_DIR": "cdn.cache_dir",
    "AZAION_CDN_REGION": "cdn.region",
    "AZAION_CDN_CA_BUNDLE": "cdn.ca_bundle",
    "AZAION_STORE_KEEP_VERSIONS": "store.keep_versions",
    "AZAION_STORE_ALLOW_UNVERIFIED": "store.allow_unverified",
    "AZAION_MODEL_KEY": "security.model_key",
    "AZAION_MODEL_KEY_FILE": "security.model_key_file",
    "AZAION_HARDWARE_FINGERPRINT": "security.hardware_fingerprint",
}
"""Environment variable -> dotted setting. The names of SPEC section 2 are kept as they are."""

CONFIG_ENV = "AZAION_CONFIG"
CDN_CONFIG_ENV = "AZAION_CDN_CONFIG"


def env_name(key: str) -> str | None:
    """The environment variable of a dotted setting, if it has one."""
    return next((name for name, target in ENVIRONMENT.items() if target == key), None)


def how_to_set(key: str) -> str:
    """A short instruction for setting a dotted key."""
    name = env_name(key)
    in_file = f"'{key}' in config.yaml"
    return f"set {name} (or {in_file})" if name else f"set {in_file}"


def env_help(*sections: str) -> str:
    """Lines for a command's ``--help`` listing the variables of the given sections: each with
    its setting and default, and the setting's description when it has one."""
    import textwrap

    lines = ["environment (variable, setting, default; a value given here overrides config.yaml):"]
    defaults = Settings()
    for name, key in ENVIRONMENT.items():
        section = key.split(".")[0] if "." in key else ""
        if not (section in sections or (not section and "" in sections)):
            continue
        default = defaults.get(key)
        shown = "none" if default is None or default == [] else str(default)
        if isinstance(default, SecretStr):
            shown = "set" if default.get_secret_value() else "none"
        lines.append(f"  {name:<36} {key} (default: {shown})")
        about = _description(key)
        if about:
            lines.extend(
                textwrap.wrap(about, width=96, initial_indent=" " * 6, subsequent_indent=" " * 6)
            )
    return "\n".join(lines)


def _description(key: str) -> str:
    """The first sentence of a setting's docstring, with its reST markup removed."""
    model: type[BaseModel] = Settings
    *parents, last = key.split(".")
    for part in parents:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    text = " ".join((model.model_fields[last].description or "").split()).replace("``", "")
    return text.split(". ")[0].rstrip(".")


def load_settings(
    config_path: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    cdn_path: Path | None = None,
) -> Settings:
    """Builds the `Settings` from every source, in priority order.

    Args:
        config_path: ``config.yaml`` to read; ``None`` looks up ``$AZAION_CONFIG``, then
            ``./config.yaml``. A path that is given but missing is an error.
        overrides: dotted keys from command-line flags; ``None`` values are ignored.
        environ: the environment to read; defaults to ``os.environ``.
        env_file: a ``.env`` file whose variables sit below the real environment; ``None`` for
            none. A missing file is skipped.
        cdn_path: ``cdn.yaml`` to read; ``None`` looks up ``$AZAION_CDN_CONFIG``, then
            ``cdn.yaml`` beside the config file or in the working folder.

    Raises:
        ConfigError: a file does not parse or a value is invalid (one line).
    """
    environ = dict(os.environ if environ is None else environ)
    env = {**_read_env_file(env_file), **environ}
    config_file = _config_file(config_path, env)
    merged: dict[str, Any] = {}
    if config_file is not None:
        _deep_merge(merged, _read_yaml(config_file))
    cdn_file = _cdn_file(cdn_path, config_file, env)
    if cdn_file is not None:
        _deep_merge(merged, {"cdn": _read_yaml(cdn_file)})
    origins: dict[str, str] = {}
    for name, key in ENVIRONMENT.items():
        if env.get(name, "") != "":
            _set_dotted(merged, key, env[name])
            origins[key] = f"environment variable {name}"
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(merged, key, value)
            origins[key] = "the command line"
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins, config_file)) from None


def _config_file(config_path: Path | None, env: Mapping[str, str]) -> Path | None:
    if config_path is not None:
        if not Path(config_path).is_file():
            raise ConfigError(f"config file {config_path} does not exist")
        return Path(config_path)
    if env.get(CONFIG_ENV):
        return _config_file(Path(env[CONFIG_ENV]), {})
    default = Path("config.yaml")
    return default if default.is_file() else None


def _cdn_file(
    cdn_path: Path | None, config_file: Path | None, env: Mapping[str, str]
) -> Path | None:
    if cdn_path is not None or env.get(CDN_CONFIG_ENV):
        path = Path(cdn_path or env[CDN_CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"CDN config file {path} does not exist")
        return path
    folder = config_file.parent if config_file is not None else Path()
    candidate = folder / "cdn.yaml"
    return candidate if candidate.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {' '.join(str(exc).split())}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
    return loaded


def _read_env_file(path: Path | None) -> dict[str, str]:
    if path is None or not Path(path).is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _describe(exc: ValidationError, origins: Mapping[str, str], config_file: Path | None) -> str:
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"])
    origin = origins.get(key) or (str(config_file) if config_file else "the defaults")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid setting {key} from {origin}: {first['msg']}{more}"


def _secret_values(model: BaseModel) -> Iterator[str]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            yield value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from _secret_values(value)
