"""spark-submit entry point: run the installed fruits-kedro project with Kedro's run options.

Used as ``spark-submit ... spark_entrypoint.py --env emr --conf-source s3://.../conf.tar.gz``.
A remote ``--conf-source`` archive is first copied to a local temporary file. The logging
configuration of that archive (``conf/logging.yml``) is used unless ``KEDRO_LOGGING_CONFIG``
names one: Kedro only looks for it in the current folder, which here is not the project.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import fsspec

CONF_SOURCE = "--conf-source"
LOGGING_CONFIG = "logging.yml"


def localise_conf_source(args: list[str], workdir: Path) -> list[str]:
    """``args`` with a remote ``--conf-source`` replaced by a local copy in ``workdir``."""
    if CONF_SOURCE not in args:
        return args
    position = args.index(CONF_SOURCE) + 1
    source = args[position]
    protocol, _ = fsspec.core.split_protocol(source)
    if protocol in (None, "file"):
        return args
    local = workdir / PurePosixPath(source).name
    fsspec.open(source).fs.get(source, str(local))
    return [*args[:position], str(local), *args[position + 1 :]]


def logging_config(args: list[str], workdir: Path) -> Path | None:
    """The ``logging.yml`` of a local ``--conf-source`` (folder or ``.tar.gz``), extracted to
    ``workdir``; None when there is none."""
    if CONF_SOURCE not in args:
        return None
    source = Path(args[args.index(CONF_SOURCE) + 1])
    if source.is_dir():
        found = source / LOGGING_CONFIG
        return found if found.exists() else None
    with tarfile.open(source) as archive:
        member = next(
            (m for m in archive if PurePosixPath(m.name).parts[1:] == (LOGGING_CONFIG,)), None
        )
        if member is None:
            return None
        target = workdir / LOGGING_CONFIG
        target.write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
        return target


def run(args: list[str]) -> None:
    """Run the project (``kedro run`` options in ``args``)."""
    with tempfile.TemporaryDirectory(prefix="fruits-conf-") as workdir:
        local = localise_conf_source(args, Path(workdir))
        config = logging_config(local, Path(workdir))
        if config is not None:
            os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(config))
        from fruits_kedro.__main__ import main  # noqa: PLC0415  (Kedro sets up logging on import)

        main(local)


if __name__ == "__main__":
    run(sys.argv[1:])
