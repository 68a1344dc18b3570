"""LFW protocol files and identity-per-folder datasets: paths and labels only, no images read.

``pairs.txt`` (LFW View 2) starts with a header ``<folds> <n>`` (``10 300``), followed by
``folds`` blocks of ``n`` same-person lines ``name i j`` then ``n`` different-person lines
``name1 i name2 j`` (whitespace separated, image numbers 1-based). Image ``i`` of ``name``
is ``<images_dir>/<name>/<name>_%04d.jpg``.

Also accepted (cheaply): a single-number header ``<n>`` (``pairsDevTrain.txt``: n same then
n different lines, one set) and a header-less file of pair lines in any order; both put
every pair in fold 0, so they can be scored but not used for k-fold accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.util.imagefiles import IMAGE_SUFFIXES, is_image_path

IMAGE_DIR_NAMES = ("lfw-deepfunneled", "lfw", "lfw_funneled")


@dataclass(frozen=True)
class Pair:
    """One LFW pair: two image paths, whether they show the same person, and its fold (0-based)."""

    path1: Path
    path2: Path
    same: bool
    fold: int


def _has_person_folders(directory: Path) -> bool:
    """True when ``directory`` holds at least one sub-folder containing an image file."""
    for sub in directory.iterdir():
        if (sub.is_dir() and not sub.name.startswith(".")
                and any(is_image_path(f) and f.is_file() for f in sub.iterdir())):
            return True
    return False


def identity_root(data_dir: str | Path) -> Path:
    """The folder of ``<Name>/`` image folders in an LFW-style folder: the first of
    ``IMAGE_DIR_NAMES`` holding person folders (a doubly nested ``X/X`` is followed), else
    ``data_dir`` itself (which may then hold the person folders directly)."""
    data_dir = Path(data_dir).expanduser()
    for name in IMAGE_DIR_NAMES:
        candidate = data_dir / name
        if (candidate / name).is_dir():
            candidate = candidate / name
        if candidate.is_dir() and _has_person_folders(candidate):
            return candidate
    return data_dir


def find_lfw_root(data_dir: str | Path) -> tuple[Path, Path]:
    """Locate ``(pairs_txt, images_dir)`` inside an LFW folder.

    ``data_dir`` must contain ``pairs.txt`` (or be that file) and the images either in one of
    ``lfw-deepfunneled``, ``lfw``, ``lfw_funneled`` (tried in that order; a doubly nested
    ``X/X`` as some archives extract is followed) or directly as ``<Name>/`` folders.
    Raises FileNotFoundError naming what was expected.
    """
    data_dir = Path(data_dir).expanduser()
    if data_dir.is_file() and data_dir.name == "pairs.txt":
        data_dir = data_dir.parent
    if not data_dir.is_dir():
        raise FileNotFoundError(f"LFW folder not found: {data_dir}")
    pairs_txt = data_dir / "pairs.txt"
    if not pairs_txt.is_file():
        raise FileNotFoundError(
            f"no pairs.txt in {data_dir}: expected the LFW View 2 protocol file "
            f"(header '10 300') next to the image folder")
    images = identity_root(data_dir)
    if _has_person_folders(images):
        return pairs_txt, images
    raise FileNotFoundError(
        f"no LFW images in {data_dir}: expected a folder named one of "
        f"{', '.join(IMAGE_DIR_NAMES)} (or <Name>/ folders directly) "
        f"holding <Name>/<Name>_0001.jpg")


def _image_path(images_dir: Path, name: str, number: str, lineno: int, path: Path) -> Path:
    try:
        idx = int(number)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: image number {number!r} is not an integer") from None
    if idx < 1:
        raise ValueError(f"{path}:{lineno}: image number {idx} must be >= 1")
    return images_dir / name / f"{name}_{idx:04d}.jpg"


def _parse_pair(tokens: list[str], images_dir: Path, lineno: int, path: Path, fold: int) -> Pair:
    if len(tokens) == 3:
        name, i, j = tokens
        return Pair(_image_path(images_dir, name, i, lineno, path),
                    _image_path(images_dir, name, j, lineno, path), True, fold)
    if len(tokens) == 4:
        n1, i, n2, j = tokens
        return Pair(_image_path(images_dir, n1, i, lineno, path),
                    _image_path(images_dir, n2, j, lineno, path), False, fold)
    raise ValueError(f"{path}:{lineno}: expected 'name i j' or 'name1 i name2 j', "
                     f"got {len(tokens)} fields: {' '.join(tokens)!r}")


def read_pairs(pairs_txt: str | Path, images_dir: str | Path,
               check_exists: bool = False) -> list[Pair]:
    """Parse an LFW pairs file into ``Pair`` objects, in file order.

    With a ``<folds> <n>`` header the layout is enforced: exactly ``folds * 2n`` pair lines,
    the first ``n`` of each fold block same-person (3 fields), the next ``n`` different
    (4 fields); ``Pair.fold`` is the 0-based block index. Blank lines are ignored.
    Malformed lines raise ValueError with ``file:line``. ``check_exists=True`` additionally
    raises FileNotFoundError on the first image path that does not exist (costs one stat
    per image).
    """
    path = Path(pairs_txt)
    images_dir = Path(images_dir)
    lines = [(n, ln.split()) for n, ln in enumerate(path.read_text().splitlines(), 1)]
    lines = [(n, t) for n, t in lines if t]
    if not lines:
        raise ValueError(f"{path}: empty pairs file")
    head_no, head = lines[0]
    pairs: list[Pair] = []
    if all(t.isdigit() for t in head) and len(head) in (1, 2):
        n_folds, per_class = (1, int(head[0])) if len(head) == 1 else (int(head[0]), int(head[1]))
        if n_folds < 1 or per_class < 1:
            raise ValueError(f"{path}:{head_no}: header {' '.join(head)!r} must be positive")
        body = lines[1:]
        if len(body) != n_folds * 2 * per_class:
            raise ValueError(
                f"{path}: header {' '.join(head)!r} promises {n_folds * 2 * per_class} pairs "
                f"({n_folds} folds x {per_class} same + {per_class} different), found {len(body)}")
        for k, (lineno, tokens) in enumerate(body):
            fold, within = divmod(k, 2 * per_class)
            want = 3 if within < per_class else 4
            if len(tokens) != want:
                kind = "same-person 'name i j'" if want == 3 else "different 'name1 i name2 j'"
                raise ValueError(f"{path}:{lineno}: expected a {kind} line in fold {fold + 1}, "
                                 f"got {len(tokens)} fields: {' '.join(tokens)!r}")
            fold = fold if len(head) == 2 else 0
            pairs.append(_parse_pair(tokens, images_dir, lineno, path, fold))
    else:
        for lineno, tokens in lines:
            pairs.append(_parse_pair(tokens, images_dir, lineno, path, 0))
    if check_exists:
        for p in pairs:
            for img in (p.path1, p.path2):
                if not img.is_file():
                    raise FileNotFoundError(f"image listed in {path} is missing: {img}")
    return pairs


def list_identity_folder(root: str | Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """List an identity-per-folder dataset ``root/<Name>/<image>``.

    Returns ``(paths, labels, names)``: ``paths`` sorted by folder then file name, ``labels``
    an int64 array (N,) with ``names[labels[i]]`` the folder of ``paths[i]``. Only files with
    an image suffix (:data:`engine.util.imagefiles.IMAGE_SUFFIXES`, any case) count; hidden entries, files directly in
    ``root`` and folders without images are ignored (so every name has >= 1 image).
    Raises FileNotFoundError when ``root`` is missing or holds no images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    paths: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        images = sorted(f for f in sub.iterdir() if is_image_path(f) and f.is_file())
        if not images:
            continue
        label = len(names)
        names.append(sub.name)
        paths.extend(images)
        labels.extend([label] * len(images))
    if not paths:
        raise FileNotFoundError(
            f"no images in {root}: expected <Name>/ folders holding "
            f"{'/'.join(e[1:] for e in IMAGE_SUFFIXES)} files")
    return paths, np.asarray(labels, dtype=np.int64), names
