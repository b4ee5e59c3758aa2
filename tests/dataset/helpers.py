"""Helpers that fill ``data-processed/`` the way the augmenter leaves it."""

from __future__ import annotations

from pathlib import Path

from azaion_training.fs import AnnotationDir, DataTree, atomic_write_text, link_or_copy
from azaion_training.samples import sample_names


def write_fake_samples(
    folder: AnnotationDir, sources: int, *, variants: int = 7, prefix: str = "frame"
) -> list[str]:
    """Writes ``sources`` annotations with their variants: tiny placeholder images, valid labels.

    Returns:
        The source names.
    """
    folder.create()
    names = [f"{prefix}_{index:05d}" for index in range(sources)]
    for name in names:
        for sample in sample_names(name, variants=variants):
            (folder.images / f"{sample}.jpg").write_bytes(b"\xff\xd8jpeg")
            atomic_write_text(folder.label_path(sample), "1 0.5 0.5 0.2 0.1\n", durable=False)
    return names


def add_variants_by_linking(folder: AnnotationDir, names: list[str], *, variants: int = 7) -> None:
    """Gives real annotations their ``_1`` .. ``_N`` samples as links of the original files."""
    for name in names:
        for sample in sample_names(name, variants=variants)[1:]:
            link_or_copy(folder.images / f"{name}.jpg", folder.images / f"{sample}.jpg")
            link_or_copy(folder.label_path(name), folder.label_path(sample))


def split_names(dataset: Path, split: str) -> set[str]:
    """The sample names (image stems) in one split of a formed dataset."""
    return {p.stem for p in (dataset / split / "images").iterdir()}


def write_real_samples(tree: DataTree, sources: int, *, size: int = 96, seed: int = 0) -> list[str]:
    """Synthetic scenes (real JPEGs, exact labels) and 7 linked variants each, in data-processed."""
    from azaion_training.demo.world import write_annotations

    names = write_annotations(tree.data_processed, sources, seed=seed, width=size, height=size)
    add_variants_by_linking(tree.data_processed, names)
    return names


def token_label(token: int) -> str:
    """A valid label that encodes ``token`` (0 .. 3999) in its class and centre."""
    return f"{token % 80} {0.1 + (token // 80) / 100:.2f} 0.5 0.2 0.1\n"


def label_token(text: str) -> int:
    """The token `token_label` encoded."""
    class_id, cx, *_ = text.split()
    return int(class_id) + 80 * round((float(cx) - 0.1) * 100)


def write_tokens(folder: AnnotationDir, name: str, token: int, *, variants: int = 7) -> None:
    """The samples of ``name``, each image naming ``token`` and its label encoding it; written
    as the augmenter writes them: atomically, the image first, then its label."""
    from azaion_training.fs import atomic_write_bytes

    for sample in sample_names(name, variants=variants):
        atomic_write_bytes(
            folder.images / f"{sample}.jpg", f"{sample} {token}".encode(), durable=False
        )
        atomic_write_text(folder.label_path(sample), token_label(token), durable=False)


def churn(root: str, names: list[str], stop: object, seed: int) -> None:
    """Another process's augmenter: re-makes (and sometimes first deletes) samples until
    ``stop`` (a multiprocessing Event) is set."""
    import random

    folder = AnnotationDir(Path(root))
    rng = random.Random(seed)
    while not stop.is_set():  # type: ignore[attr-defined]
        name = rng.choice(names)
        if rng.random() < 0.3:
            for sample in sample_names(name):
                (folder.images / f"{sample}.jpg").unlink(missing_ok=True)
                folder.label_path(sample).unlink(missing_ok=True)
        write_tokens(folder, name, rng.randrange(4000))
