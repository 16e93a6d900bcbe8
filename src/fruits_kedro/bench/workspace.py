"""What every benchmark shares: the shared images and weights, a scratch copy of the project in
a workspace folder, Kedro runs and contexts in it, and the bytes a run wrote."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pyspark.sql import SparkSession

from fruits_kedro.tools.fetch import IMAGE_SUFFIXES

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from kedro.framework.context import KedroContext


def shared_folder() -> Path:
    """The folder of shared images and weights: ``$FRUITS_SHARED`` or ``../shared``."""
    return Path(os.environ.get("FRUITS_SHARED") or "../shared")


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    """``keep`` (created, kept afterwards), or a temporary folder removed when this process
    ends: after the Spark session of its runs, which closes its event log there."""
    if keep is not None:
        keep.mkdir(parents=True)
        yield keep.resolve()
        return
    folder = Path(tempfile.mkdtemp(prefix="fruits-benchmark-"))
    atexit.register(_remove_after_spark, folder)
    yield folder


def _remove_after_spark(folder: Path) -> None:
    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
    shutil.rmtree(folder, ignore_errors=True)


def scratch_project(project: Path, target: Path) -> Path:
    """A copy of the project's configuration, so that the run writes only under ``target``."""
    (target / "src").mkdir(parents=True)
    shutil.copytree(project / "conf", target / "conf")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(project / name, target / name)
    return target


def link_tree(source: Path, target: Path) -> None:
    """``target`` with the files of ``source``, hard-linked where the file system allows."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def image_files(folder: Path) -> list[Path]:
    """Every image below ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def nested_params(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys nested as ``kedro run --params`` does; string values read as YAML."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *groups, leaf = key.split(".")
        target = nested
        for group in groups:
            target = target.setdefault(group, {})
        target[leaf] = yaml.safe_load(value) if isinstance(value, str) else value
    return nested


def run_pipelines(
    project: Path, params: dict[str, Any], names: list[str], env: str = "local"
) -> None:
    """Run each named pipeline of the project in its own Kedro session."""
    bootstrap_project(project)
    for name in names:
        session = KedroSession.create(project_path=project, env=env, runtime_params=params)
        try:
            session.run(pipeline_names=[name])
        finally:
            session.close()


@contextlib.contextmanager
def project_context(
    project: Path, params: dict[str, Any], env: str = "local"
) -> Iterator[KedroContext]:
    """The project's context (catalog, parameters, configuration) with ``params``."""
    bootstrap_project(project)
    session = KedroSession.create(project_path=project, env=env, runtime_params=params)
    try:
        yield session.load_context()
    finally:
        session.close()


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables for one run; restore them (and the workers' Python) after."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def bytes_written(project: Path, entries: dict[str, Any]) -> dict[str, int]:
    """Bytes on disk of every output of the catalog configuration ``entries`` (files of a
    folder added up)."""
    sizes = {}
    for name, entry in entries.items():
        if name == "raw_images" or not isinstance(entry, dict) or "filepath" not in entry:
            continue
        path = Path(entry["filepath"])
        path = path if path.is_absolute() else project / path
        if path.is_file():
            sizes[name] = path.stat().st_size
        elif path.is_dir():
            sizes[name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def runtime_params(args: argparse.Namespace) -> dict[str, Any]:
    """The Kedro runtime parameters of a benchmark's options (``--params`` last)."""
    flat: dict[str, Any] = {
        "input_dir": str(args.input_dir.resolve()),
        "weights": str(Path(args.weights).resolve()),
        "image.input_size": args.input_size,
    }
    if args.engine:
        flat["embedding.engine"] = args.engine
    flat.update(item.split("=", 1) for item in args.params.split(",") if item)
    return nested_params(flat)
