"""The sentences of docs/architecture.md that a test can check: the module map names every
module, the dotted names it gives resolve, the test files follow its rule of where a test
belongs, importing a library module changes nothing, and no package has an import circle even
through type-only imports."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import azaion_training
from azaion_training.config import Settings

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "azaion_training"
DOC = (REPO / "docs" / "architecture.md").read_text()


def _module_map() -> dict[str, str]:
    """Entry of the module map (``fs.py``, ``queue/``) -> its text."""
    block = DOC.split("## Module map", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        match = re.match(r"^  (\S+)\s+(.*)$", line)
        if match:
            current = match[1]
            entries[current] = match[2]
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
    return entries


def test_the_module_map_names_every_module_and_only_existing_ones() -> None:
    entries = _module_map()
    for entry, text in entries.items():
        assert (SRC / entry.rstrip("/")).exists(), f"{entry} in the module map does not exist"
        if not entry.endswith("/") or entry == "cli/":
            continue  # cli/: one module per console script (tests/cli/test_help.py)
        for module in sorted((SRC / entry).glob("[!_]*.py")):
            assert re.search(rf"\b{module.stem}\b", text), f"{entry}{module.name} is not in the map"
    top = {p.name for p in SRC.glob("*.py")} - {"py.typed"}
    packages = {p.name + "/" for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert top | packages <= set(entries), f"missing: {sorted((top | packages) - set(entries))}"


def _section_fields(section: str) -> set[str]:
    annotation = Settings.model_fields[section].annotation
    return set(getattr(annotation, "model_fields", {}))


def test_every_dotted_name_in_the_document_resolves() -> None:
    """`infer.load.ENGINES`, `queue.wire.KINDS`, ...: each names a module or an attribute."""
    names = set(re.findall(r"`([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`", DOC))
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in SRC.glob("*.py")}
    checked = 0
    for name in sorted(names):
        head, *rest = name.split(".")
        if head not in packages | modules or rest[-1] in ("py", "md", "json", "yaml", "html"):
            continue  # a file name (``report.html``) or another library's name
        if head in Settings.model_fields and rest[0] in _section_fields(head):
            continue  # a setting (``evaluate.gate_bucket``), checked by tests/test_config.py
        parts = [head, *rest]
        for cut in range(len(parts), 0, -1):
            try:
                target = importlib.import_module("azaion_training." + ".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                assert hasattr(target, attribute), f"`{name}` does not resolve"
                target = getattr(target, attribute)
            break
        else:
            raise AssertionError(f"`{name}` names no module")
        checked += 1
    assert checked >= 20  # the extension table and the paragraphs name that many at least


def test_every_test_file_mirrors_a_module_or_is_a_listed_capability_test() -> None:
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        relative = path.relative_to(REPO / "tests")
        package = SRC.joinpath(*relative.parts[:-1])
        stem = path.stem.removeprefix("test_")
        mirrors = any(
            (package / f"{candidate}.py").is_file() or (package / candidate).is_dir()
            for candidate in [stem, "_" + stem, stem.split("_")[0], stem.rsplit("_", 1)[0]]
        ) or stem in ("cli", "command")
        listed = f"`tests/{relative.as_posix()}`" in DOC
        assert mirrors or listed, f"tests/{relative} mirrors no module and is not listed"


def test_importing_any_library_module_changes_nothing() -> None:
    """No environment variable set, no ``sys.modules`` entry patched and no signal's handling
    changed by importing every module (cv2 and numpy are imported first: they set variables of
    their own). A changed signal would be inherited: SIGTERM ignored by a test run that collects
    every module reached every process the tests started."""
    code = """
import os, sys, importlib, pkgutil, signal, cv2, numpy
import azaion_training
handling = lambda: {s.name: signal.getsignal(s) for s in signal.Signals if s.name != "SIGKILL"}
before, signals = dict(os.environ), handling()
for info in pkgutil.walk_packages(azaion_training.__path__, "azaion_training."):
    if info.name.endswith("rknn_worker"):
        continue  # a script for the RKNN toolkit's own environment
    importlib.import_module(info.name)
changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
patched = [name for name, module in sys.modules.items() if module is None]
moved = sorted(name for name, handler in handling().items() if signals[name] != handler)
print(sorted(changed), patched, "albumentations" in sys.modules, moved)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[] [] False []", done.stdout + done.stderr[-2000:]


def test_no_import_circle_even_through_type_only_imports() -> None:
    """import-linter's contracts leave out type-only imports (`pyproject.toml`); this graph
    keeps them: no two modules of one package import each other, however indirectly."""
    import grimp

    graph = grimp.build_graph("azaion_training", exclude_type_checking_imports=False)
    circles = set()
    for info in pkgutil.walk_packages(azaion_training.__path__, "azaion_training."):
        if not info.ispkg:
            continue
        children = sorted(graph.find_children(info.name))
        for index, child in enumerate(children):
            for other in children[index + 1 :]:
                if graph.chain_exists(
                    importer=child, imported=other, as_packages=True
                ) and graph.chain_exists(importer=other, imported=child, as_packages=True):
                    circles.add((child, other))
    assert circles == set(), f"import circles: {sorted(circles)}"
