"""Build an N-image scale corpus in the Fruits-360 layout by label-preserving augmentation.

Every source image below ``--source`` is copied unchanged, then augmented variants are added
round-robin over the sources until ``--images`` files exist under ``--dest``::

    python -m fruits_kedro.tools.corpus --source DIR --dest DIR --images 32000 [--seed 0]

A variant keeps its source's ``<split>/<class>`` folder and is named ``<stem>_aug<k>.jpg``
(k-th variant of that source). Flips, a small rotation on white, a crop of 85-100 % resized
back, colour jitter and a JPEG re-encode are drawn from a generator seeded by (seed, source
path, k): the same seed gives byte-identical files, whatever the number of workers. With
fewer images than sources, an evenly spread subset of the sources is copied.

``--dest`` must be empty or missing, outside the source folder and outside any project
(no ``pyproject.toml`` or ``.git`` in it or its parents). The command writes a marker file
``.fruits-corpus.json`` first; ``--force`` resumes into a folder holding a marker of the same
settings, writes only the missing files and removes nothing. The last line on stdout is a
JSON summary: ``images``, ``sources``, ``augmented``, ``bytes``, ``dest``, ``seconds``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from fruits_kedro.tools.fetch import IMAGE_SUFFIXES, spaced, write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

MARKER = ".fruits-corpus.json"
PROJECT_MARKS = ("pyproject.toml", ".git")
WHITE = (255, 255, 255)
MAX_ROTATION = 15.0  # degrees, either way
CROP_RANGE = (0.85, 1.0)  # side of the crop, as a fraction of the source's side
JITTER = 0.15  # brightness, contrast and saturation factors in 1 ± JITTER
DEFAULT_QUALITY = (75, 95)
CHUNK_SIZE = 500  # images per task sent to a worker process
PROGRESS_STEPS = 10


class CorpusError(Exception):
    """The corpus cannot be built at ``where``.

    Args:
        where: The path (or option) at fault.
        reason: A short, human-readable cause.
    """

    def __init__(self, where: object, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason

    def __reduce__(self) -> tuple[type[CorpusError], tuple[object, str]]:
        # Raised in worker processes: pickled back with both arguments.
        return type(self), (self.where, self.reason)


@dataclass(frozen=True)
class Job:
    """One file to write: a source image (relative POSIX path) and its variant number (0: copy)."""

    source: str
    variant: int

    @property
    def target(self) -> str:
        """Return the relative path of the written file."""
        if self.variant == 0:
            return self.source
        path = PurePosixPath(self.source)
        return str(path.with_name(f"{path.stem}_aug{self.variant}.jpg"))


@dataclass(frozen=True)
class Settings:
    """What every worker needs: the two folders, the seed and the JPEG quality range."""

    source: Path
    dest: Path
    seed: int
    quality: tuple[int, int]
    resume: bool = False


def list_sources(folder: Path) -> list[str]:
    """Return the relative POSIX paths of every image below ``folder``, sorted.

    Raises:
        CorpusError: ``folder`` is not a folder or holds no image.
    """
    if not folder.is_dir():
        raise CorpusError(folder, "the source is not a folder")
    found = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not found:
        raise CorpusError(folder, "no .jpg, .jpeg or .png image below the source")
    return found


def plan(sources: Sequence[str], images: int) -> list[Job]:
    """Choose the files to write: the sources first (an even subset if fewer), then variants.

    Variants go round-robin over the sorted sources, so every source gets ``k`` variants
    before any gets ``k + 1``.

    Raises:
        CorpusError: Two planned files would have the same path.
    """
    if images <= len(sources):
        return [Job(source, 0) for source in spaced(sources, images)]
    jobs = [Job(source, 0) for source in sources]
    jobs += [
        Job(sources[i % len(sources)], 1 + i // len(sources)) for i in range(images - len(sources))
    ]
    seen: set[str] = set()
    for job in jobs:
        if job.target in seen:
            raise CorpusError(job.target, "two planned files share this path (same stem twice?)")
        seen.add(job.target)
    return jobs


def variant_rng(seed: int, source: str, variant: int) -> np.random.Generator:
    """Return the generator of one variant, seeded from a hash of (seed, source, variant)."""
    digest = hashlib.sha256(f"{seed}\0{source}\0{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def augment(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Flip, rotate, crop and jitter ``image``; the result has the same size, in RGB.

    Every random number is drawn whatever the branch, so that each draw stays in its place.
    """
    flip_h, flip_v = rng.random(2) < 0.5  # noqa: PLR2004  (a fair coin)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    side = rng.uniform(*CROP_RANGE)
    corner = rng.random(2)
    brightness, contrast, saturation = rng.uniform(1 - JITTER, 1 + JITTER, 3)

    out = image.convert("RGB")
    out = ImageOps.mirror(out) if flip_h else out
    out = ImageOps.flip(out) if flip_v else out
    out = out.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=WHITE)
    width, height = out.size
    crop_w, crop_h = max(1, round(width * side)), max(1, round(height * side))
    left, top = int(corner[0] * (width - crop_w + 1)), int(corner[1] * (height - crop_h + 1))
    box = (left, top, left + crop_w, top + crop_h)
    out = out.resize((width, height), Image.Resampling.BICUBIC, box=box)
    out = ImageEnhance.Brightness(out).enhance(brightness)
    out = ImageEnhance.Contrast(out).enhance(contrast)
    return ImageEnhance.Color(out).enhance(saturation)


def make_variant(data: bytes, rng: np.random.Generator, quality: tuple[int, int]) -> bytes:
    """Decode ``data``, augment it and re-encode it as a JPEG of a quality drawn in ``quality``."""
    with Image.open(io.BytesIO(data)) as image:
        out = augment(image, rng)
    buffer = io.BytesIO()
    out.save(buffer, format="JPEG", quality=int(rng.integers(quality[0], quality[1] + 1)))
    return buffer.getvalue()


def write_job(settings: Settings, job: Job) -> int:
    """Write one planned file (unless resuming and it exists); return its size in bytes.

    Raises:
        CorpusError: The source cannot be read or decoded.
    """
    target = settings.dest / job.target
    if settings.resume and target.is_file():
        return target.stat().st_size
    path = settings.source / job.source
    try:
        data = path.read_bytes()
        if job.variant:
            data = make_variant(
                data, variant_rng(settings.seed, job.source, job.variant), settings.quality
            )
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise CorpusError(path, f"cannot make variant {job.variant} ({error})") from error
    write_atomic(target, data)
    return len(data)


def write_chunk(settings: Settings, jobs: Sequence[Job]) -> int:
    """Write a chunk of planned files; return their total size in bytes."""
    return sum(write_job(settings, job) for job in jobs)


def _chunks(jobs: Sequence[Job], size: int) -> Iterator[Sequence[Job]]:
    """Cut ``jobs`` into consecutive slices of at most ``size``."""
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def run(settings: Settings, jobs: Sequence[Job], workers: int) -> int:
    """Write every planned file, over ``workers`` processes (1: in this process); return bytes.

    A progress line is logged every tenth of the way.
    """
    size = max(1, min(CHUNK_SIZE, len(jobs) // (workers * 4 * PROGRESS_STEPS)))
    progress = _Progress(len(jobs))
    if workers == 1:
        for chunk in _chunks(jobs, size):
            progress.add(len(chunk), write_chunk(settings, chunk))
        return progress.bytes
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(write_chunk, settings, c): len(c) for c in _chunks(jobs, size)}
        try:
            for future in as_completed(futures):
                progress.add(futures[future], future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a broken source: do not write the rest
            raise
    return progress.bytes


class _Progress:
    """Counts written files and bytes; logs a line each time another tenth is done."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.bytes, self.step = total, 0, 0, 0
        self.start = time.perf_counter()

    def add(self, files: int, size: int) -> None:
        self.done, self.bytes = self.done + files, self.bytes + size
        step = self.done * PROGRESS_STEPS // self.total
        if step > self.step:
            self.step = step
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            logger.info("%d/%d images (%d %%, %.0f img/s)", self.done, self.total, step * 10, rate)


def check_dest(source: Path, dest: Path, marker: dict[str, Any], force: bool) -> None:
    """Refuse a destination that overlaps the source, lies in a project or is not ours to fill.

    Args:
        source: The resolved source folder.
        dest: The resolved destination folder.
        marker: The settings this run writes into the destination's marker file.
        force: Resume into a destination that holds a marker of the same settings.

    Raises:
        CorpusError: The destination is refused; the reason says why.
    """
    if dest == source or source in dest.parents or dest in source.parents:
        raise CorpusError(dest, f"the destination overlaps the source folder {source}")
    for folder in (dest, *dest.parents):
        found = [name for name in PROJECT_MARKS if (folder / name).exists()]
        if found:
            raise CorpusError(
                dest,
                f"inside the project {folder} (has {found[0]}): "
                "the corpus must be written outside the repository",
            )
    if dest.exists() and not dest.is_dir():
        raise CorpusError(dest, "the destination exists and is not a folder")
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    if not force:
        raise CorpusError(dest, "the destination is not empty (--force resumes a corpus build)")
    try:
        previous = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError) as error:
        raise CorpusError(dest, f"--force needs a {MARKER} of this command ({error})") from error
    if previous != marker:
        raise CorpusError(dest, f"--force: {MARKER} was written with other settings: {previous}")


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Build the corpus described by the parsed options; return the JSON summary.

    Raises:
        CorpusError: The source or the destination is refused, or a source image is broken.
    """
    start = time.perf_counter()
    source, dest = args.source.resolve(), args.dest.resolve()
    marker = {"source": str(source), "images": args.images, "seed": args.seed}
    marker["quality"] = list(args.quality)
    check_dest(source, dest, marker, args.force)
    sources = list_sources(source)
    jobs = plan(sources, args.images)
    dest.mkdir(parents=True, exist_ok=True)
    write_atomic(dest / MARKER, json.dumps(marker).encode())
    logger.info("writing %d images from %d sources to %s", len(jobs), len(sources), dest)
    settings = Settings(source, dest, args.seed, args.quality, resume=args.force)
    size = run(settings, jobs, args.workers)
    return {
        "images": len(jobs),
        "sources": len(sources),
        "augmented": sum(1 for job in jobs if job.variant),
        "bytes": size,
        "dest": str(dest),
        "seconds": round(time.perf_counter() - start, 2),
    }


def _positive(text: str) -> int:
    """Parse a strictly positive integer for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _quality(text: str) -> tuple[int, int]:
    """Parse ``Q`` or ``LO-HI`` (1 to 95) into a JPEG quality range for argparse."""
    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected Q or LO-HI, got {text!r}") from error
    if not 1 <= bounds[0] <= bounds[1] <= 95:  # noqa: PLR2004  (Pillow's highest useful quality)
        raise argparse.ArgumentTypeError(f"expected 1 <= LO <= HI <= 95, got {text!r}")
    return bounds


def _parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m fruits_kedro.tools.corpus", description=__doc__
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--source", type=Path, required=True, help="Fruits-360 folder: <split>/<class>/<image>")
    add("--dest", type=Path, required=True, help="empty or missing folder, outside any project")
    add("--images", type=_positive, required=True, help="how many images to write")
    add("--seed", type=int, default=0, help="augmentation seed (default: 0)")
    add("--workers", type=_positive, default=os.cpu_count() or 1, help="processes (default: CPUs)")
    add(
        "--quality",
        type=_quality,
        default=DEFAULT_QUALITY,
        help="JPEG quality of the variants, Q or a range LO-HI to draw from (default: 75-95)",
    )
    add("--force", action="store_true", help="resume a build of the same settings into --dest")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Args:
        argv: The arguments, without the program name; ``None`` reads ``sys.argv``.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        summary = build(args)
    except CorpusError as error:
        logger.error("corpus not built: %s", error)
        return 1
    print(json.dumps(summary))  # noqa: T201  (the command's output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
