"""Interactive browsing (one image at a time, keys move on) and the model graph in netron.

Keys: ``right``/``n``/``space`` next, ``left``/``p``/``backspace`` previous, ``home``/``end``
first/last, ``q``/``escape`` quit. Browsing needs a display and a GUI backend of matplotlib;
without one `browse` says so instead of opening nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azaion_training.classes import ClassTable
from azaion_training.errors import ConfigError
from azaion_training.images import ToRGB
from azaion_training.visualise.grid import LABEL_FONT, TITLE_FONT, load_cell
from azaion_training.visualise.render import annotate
from azaion_training.visualise.source import LabelledImage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

NEXT_KEYS = frozenset({"right", "n", " ", "space", "down", "pagedown"})
PREVIOUS_KEYS = frozenset({"left", "p", "backspace", "up", "pageup"})
QUIT_KEYS = frozenset({"q", "escape"})
_HEADLESS_BACKENDS = frozenset({"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"})


class Browser:
    """Shows ``items`` one at a time on ``figure`` and moves on key presses.

    Args:
        figure: the figure to draw on (from pyplot for a window, or any Figure in tests).
        items: the images to browse.
        table: the class table (colours and names).
        on_quit: called when a quit key is pressed (closes the window).
        cell_px: the longest side an image is drawn at.
    """

    def __init__(
        self,
        figure: Figure,
        items: Sequence[LabelledImage],
        table: ClassTable,
        *,
        on_quit: Callable[[], None] = lambda: None,
        cell_px: int = 900,
        to_rgb: ToRGB | None = None,
    ) -> None:
        if not items:
            raise ConfigError("there are no images to browse")
        self.figure = figure
        self.items = items
        self.table = table
        self.index = 0
        self.closed = False
        self._on_quit = on_quit
        self._cell_px = cell_px
        self._to_rgb = to_rgb
        figure.canvas.mpl_connect("key_press_event", self.on_key)
        self.show(0)

    def show(self, index: int) -> None:
        """Draws image ``index`` (clamped to the range)."""
        self.index = min(max(index, 0), len(self.items) - 1)
        item = self.items[self.index]
        cell = load_cell(item, self.table, cell_px=self._cell_px, to_rgb=self._to_rgb)
        self.figure.clear()
        ax = self.figure.add_axes((0.01, 0.04, 0.98, 0.9))
        ax.imshow(cell.image, interpolation="antialiased")
        ax.set_axis_off()
        ax.set_title(
            f"{cell.caption}   ({self.index + 1} / {len(self.items)})",
            fontsize=TITLE_FONT + 2,
        )
        height, width = cell.image.shape[:2]
        annotate(ax, cell.boxes, self.table, width=width, height=height, size=LABEL_FONT + 2)
        self.figure.text(
            0.5,
            0.01,
            "→ / n next    ← / p previous    q quit",
            ha="center",
            fontsize=9,
            color="#555555",
        )
        self.figure.canvas.draw_idle()

    def on_key(self, event: Any) -> None:
        """Handles one key press event."""
        key = event.key
        if key in NEXT_KEYS:
            self.show(self.index + 1)
        elif key in PREVIOUS_KEYS:
            self.show(self.index - 1)
        elif key == "home":
            self.show(0)
        elif key == "end":
            self.show(len(self.items) - 1)
        elif key in QUIT_KEYS:
            self.closed = True
            self._on_quit()


def browse(
    items: Sequence[LabelledImage], table: ClassTable, *, to_rgb: ToRGB | None = None
) -> None:
    """Opens a window and browses ``items`` until the user quits.

    Raises:
        ConfigError: there is no display or no GUI backend for matplotlib.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend().lower()
    if backend in _HEADLESS_BACKENDS or "inline" in backend:
        raise ConfigError(
            "interactive browsing needs a display and a GUI backend "
            f"(matplotlib uses {backend!r}); save a grid with --out instead"
        )
    figure = plt.figure(figsize=(11, 9))
    manager = figure.canvas.manager
    if manager is not None and getattr(manager, "key_press_handler_id", None) is not None:
        figure.canvas.mpl_disconnect(manager.key_press_handler_id)  # our keys, not the toolbar's
    Browser(figure, items, table, on_quit=lambda: plt.close(figure), to_rgb=to_rgb)
    plt.show()


def open_model_graph(
    path: Path,
    *,
    browse: bool = True,
    address: tuple[str, int] | None = None,
    wait: bool = False,
) -> tuple[str, int]:
    """Serves a model file with netron (the ``viz`` extra) and opens it in the web browser.

    Args:
        path: a model file netron reads (``.pt``, ``.onnx``, ``.engine``, ...).
        browse: open the system's web browser at the page.
        address: ``(host, port)`` to serve on; netron picks a free local port when ``None``.
        wait: block until Ctrl-C, then stop serving.

    Returns:
        The ``(host, port)`` netron serves on; stop it with ``netron.stop(address)``.

    Raises:
        ConfigError: the file does not exist, or netron is not installed.
    """
    if not Path(path).is_file():
        raise ConfigError(f"model file {path} does not exist")
    try:
        import netron
    except ImportError as exc:
        raise ConfigError(
            "netron is not installed; install the viz extra: pip install 'azaion-training[viz]'"
        ) from exc
    served = netron.start(str(path), address=address, browse=browse)
    logger.info("netron serves %s at http://%s:%s", path, served[0], served[1])
    if wait:
        netron.wait()
    return served[0], int(served[1])
