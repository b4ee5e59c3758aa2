"""Opening a page in a real headless Chromium (the Debian ``chromium`` package) to check it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""The browser, or ``None`` when it is not installed (tests then skip)."""

_CHECKER = """<script>
window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length;
  const out = document.createElement('pre');
  out.id = 'check';
  out.textContent = JSON.stringify({images: document.images.length, broken: broken,
    sections: [...document.querySelectorAll('section')].map(s => s.id)});
  document.body.appendChild(out);
});
</script>"""


def browser_check(page: Path) -> dict[str, Any]:
    """Loads a copy of ``page`` with a checking script; returns its image and section counts.

    Returns:
        ``{"images": n, "broken": n, "sections": [section ids in order]}``.
    """
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed")
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _CHECKER + "</body>"))
    try:
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=5000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        probe.unlink()
    match = re.search(r"<pre id=\"check\">(.*?)</pre>", dom)
    if match is None:
        raise AssertionError(f"the check did not run; the page ends:\n{dom[-2000:]}")
    return json.loads(match[1].replace("&quot;", '"'))
