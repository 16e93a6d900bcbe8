"""Download a small, real sample of the public Fruits-360 dataset into an empty folder.

The images come from the dataset's GitHub repository (``fruits-360/fruits-360-100x100``,
CC BY-SA 4.0, Mihai Oltean), listed through the GitHub REST "contents" API and then
downloaded from each file's ``download_url``. The sample keeps the dataset's layout,
``<dest>/<Training|Test>/<Class>/<file>``, so the pipeline reads it like the full copy::

    python -m fruits_kedro.tools.fetch --dest data/01_raw --classes 8 --per-class 6

Nothing is downloaded when ``--dest`` already holds images, unless ``--force`` is given.
Only the standard library is used; ``GITHUB_TOKEN``, when set, authenticates the API calls.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_REPO = "fruits-360/fruits-360-100x100"
DEFAULT_REF = "main"
DEFAULT_TIMEOUT = 30.0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
IMAGE_MAGICS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
TRAINING, TEST = "Training", "Test"
USER_AGENT = "fruits-kedro-fetch/1.0 (+https://github.com/fruits-360)"
WORKERS = 8

T = TypeVar("T")


class FetchError(Exception):
    """The dataset could not be listed or downloaded from ``url``.

    Args:
        url: The address that failed.
        reason: A short, human-readable cause.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """Where the dataset lives: a GitHub API base URL, an ``owner/name`` repo and a git ref."""

    api_url: str = DEFAULT_API_URL
    repo: str = DEFAULT_REPO
    ref: str = DEFAULT_REF
    timeout: float = DEFAULT_TIMEOUT

    def contents_url(self, path: str) -> str:
        """Return the contents-API address that lists the folder ``path`` of the repo."""
        query = urllib.parse.urlencode({"ref": self.ref})
        folder = urllib.parse.quote(path.strip("/"))
        return f"{self.api_url.rstrip('/')}/repos/{self.repo}/contents/{folder}?{query}"


@dataclass(frozen=True)
class Pick:
    """One image to download: its split, class, file name and raw download address."""

    split: str
    label: str
    name: str
    url: str

    def target(self, dest: Path) -> Path:
        """Return where the image goes under ``dest``."""
        return dest / self.split / self.label / self.name


def has_images(folder: Path) -> bool:
    """Tell whether ``folder`` holds, at any depth, at least one image file.

    Args:
        folder: The folder to look in; a missing folder holds no images.

    Returns:
        ``True`` when a ``.jpg``, ``.jpeg`` or ``.png`` file exists below ``folder``.
    """
    if not folder.is_dir():
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.rglob("*"))


def spaced(items: Sequence[T], count: int) -> list[T]:
    """Pick ``count`` items evenly spaced over ``items``, starting with the first one.

    Args:
        items: The items to pick from, in a stable order.
        count: How many to pick; all items are returned when there are not more.

    Returns:
        The picked items, in their original order, without repeats.
    """
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def _reason(error: BaseException) -> str:
    """Turn a network or decoding error into a short message."""
    if isinstance(error, urllib.error.HTTPError):
        hint = " (GitHub rate limit? set GITHUB_TOKEN)" if error.code in {403, 429} else ""
        return f"HTTP {error.code} {error.reason}{hint}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__


def _get(url: str, source: Source, *, api: bool = False) -> bytes:
    """Return the body at ``url``; only ``api`` calls carry the ``GITHUB_TOKEN``.

    Raises:
        FetchError: The server could not be reached or answered an error.
    """
    headers = {"User-Agent": USER_AGENT}
    token = os.environ.get("GITHUB_TOKEN")
    if api:
        headers["Accept"] = "application/vnd.github+json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=source.timeout) as response:
            return response.read()
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(url, _reason(error)) from error


def list_folder(source: Source, path: str) -> list[dict[str, Any]]:
    """List the entries of the repo folder ``path`` through the contents API.

    Raises:
        FetchError: The listing failed or is not a JSON list of entries.
    """
    url = source.contents_url(path)
    try:
        entries = json.loads(_get(url, source, api=True))
    except ValueError as error:
        raise FetchError(url, f"the answer is not JSON ({error})") from error
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FetchError(url, "the answer is not a list of folder entries")
    return entries


def _safe(name: object) -> bool:
    """Tell whether ``name`` is a plain file or folder name (no separators, no ``..``)."""
    return isinstance(name, str) and name not in {"", ".", ".."} and Path(name).name == name


def _folders(entries: Iterable[dict[str, Any]]) -> list[str]:
    """Return the sorted names of the sub-folders among ``entries``."""
    return sorted(e["name"] for e in entries if e.get("type") == "dir" and _safe(e.get("name")))


def _images(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the image files among ``entries`` that can be downloaded, sorted by name."""
    found = [
        e
        for e in entries
        if e.get("type") == "file"
        and _safe(e.get("name"))
        and Path(e["name"]).suffix.lower() in IMAGE_SUFFIXES
        and str(e.get("download_url")).startswith(("https://", "http://"))
    ]
    return sorted(found, key=lambda e: e["name"])


def _picks(source: Source, split: str, label: str, count: int) -> list[Pick]:
    """Pick ``count`` evenly spaced images of class ``label`` in ``split``."""
    files = spaced(_images(list_folder(source, f"{split}/{label}")), count)
    return [Pick(split, label, f["name"], f["download_url"]) for f in files]


def plan(source: Source, classes: int, per_class: int) -> list[Pick]:
    """Choose the images to download: ``classes`` classes, ``per_class`` training images each.

    Each picked class also gets ``per_class // 2`` (at least one) test images when the class
    exists in the ``Test`` split. All picks are evenly spaced over sorted listings.

    Raises:
        FetchError: A listing failed.
    """
    labels = spaced(_folders(list_folder(source, TRAINING)), classes)
    tested = set(_folders(list_folder(source, TEST)))
    picks: list[Pick] = []
    for label in labels:
        picks += _picks(source, TRAINING, label, per_class)
        if label in tested:
            picks += _picks(source, TEST, label, max(1, per_class // 2))
    return picks


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    ) as handle:
        handle.write(data)
    try:
        os.replace(handle.name, path)
    except OSError:
        Path(handle.name).unlink(missing_ok=True)
        raise


def download(pick: Pick, source: Source) -> bytes:
    """Download one picked image and return its bytes.

    Raises:
        FetchError: The download failed or did not return a JPEG or PNG image.
    """
    data = _get(pick.url, source)
    if not data.startswith(IMAGE_MAGICS):
        raise FetchError(pick.url, "the answer is not a JPEG or PNG image")
    return data


def fetch(dest: Path, source: Source, classes: int = 8, per_class: int = 6) -> list[Path]:
    """Download a sample of the dataset into ``dest`` and return the written files.

    Every image is downloaded before the first one is written, so a failed run leaves
    ``dest`` as it was (and the next run does not skip over a half-filled folder).

    Raises:
        FetchError: A listing or a download failed.
    """
    picks = plan(source, classes, per_class)
    logger.info("downloading %d images of %s@%s", len(picks), source.repo, source.ref)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        blobs = list(pool.map(lambda pick: download(pick, source), picks))
    paths = [pick.target(dest) for pick in picks]
    for path, data in zip(paths, blobs, strict=True):
        write_atomic(path, data)
    logger.info("wrote %d images to %s", len(paths), dest)
    return paths


def _positive(text: str) -> int:
    """Parse a strictly positive integer for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m fruits_kedro.tools.fetch", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--dest", type=Path, required=True, help="folder to fill, e.g. data/01_raw")
    add("--classes", type=_positive, default=8, help="classes to sample (default: 8)")
    add("--per-class", type=_positive, default=6, help="training images per class (default: 6)")
    add("--api-url", "--source", default=DEFAULT_API_URL, help="GitHub API base URL")
    add("--repo", default=DEFAULT_REPO, help=f"owner/name (default: {DEFAULT_REPO})")
    add("--ref", default=DEFAULT_REF, help=f"branch, tag or commit (default: {DEFAULT_REF})")
    add("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request")
    add("--force", action="store_true", help="download even when --dest already has images")
    return parser


def _offline_message(error: FetchError) -> str:
    """Explain a failed download and how to run from a local copy instead."""
    return (
        f"Could not download the Fruits-360 dataset from {error.url} ({error.reason}). "
        "Offline? Point the run at a local copy of the images instead: "
        "FRUITS_SHARED=<folder>, or kedro run --params input_dir=<folder>."
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Args:
        argv: The arguments, without the program name; ``None`` reads ``sys.argv``.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if has_images(args.dest) and not args.force:
        logger.info("skipping: %s already holds images (use --force to fetch)", args.dest)
        return 0
    source = Source(args.api_url, args.repo, args.ref, args.timeout)
    try:
        fetch(args.dest, source, args.classes, args.per_class)
    except FetchError as error:
        logger.error(_offline_message(error))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
