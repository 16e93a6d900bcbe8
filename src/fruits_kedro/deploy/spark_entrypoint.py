"""spark-submit entry point: run the installed fruits-kedro project with Kedro's run options.

Used as ``spark-submit ... spark_entrypoint.py --env emr --conf-source s3://.../conf.tar.gz``.
A remote ``--conf-source`` archive is first copied to a local temporary file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path, PurePosixPath

import fsspec

from fruits_kedro.__main__ import main

CONF_SOURCE = "--conf-source"


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


def run(args: list[str]) -> None:
    """Run the project (``kedro run`` options in ``args``)."""
    with tempfile.TemporaryDirectory(prefix="fruits-conf-") as workdir:
        main(localise_conf_source(args, Path(workdir)))


if __name__ == "__main__":
    run(sys.argv[1:])
