"""The JVM libraries a run needs besides Spark's own: Delta Lake everywhere, and the S3A
connector where the run starts Spark itself against S3 (EMR ships both).

Their Maven coordinates live here (``make jars`` fetches the same list into the local Maven
repository). When every jar of a list is there, the session takes the files (``spark.jars``):
no Ivy resolution at start-up, no network. Otherwise Spark resolves the coordinates
(``spark.jars.packages``) from Maven Central.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Delta Lake for Spark 4.1: Spark already ships the libraries its pom also names.
DELTA = ("io.delta:delta-spark_4.1_2.13:4.2.0", "io.delta:delta-storage:4.2.0")
# Spark's S3A connector for the Hadoop of pyspark 4.1.1, with the dependencies of its pom.
S3A = (
    "org.apache.hadoop:hadoop-aws:3.4.2",
    "software.amazon.awssdk:bundle:2.29.52",
    "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.2.1",
    "org.wildfly.openssl:wildfly-openssl:2.1.4.Final",
)
GROUPS = {"delta": DELTA, "s3a": S3A}


def maven_repository() -> Path:
    """The local Maven repository Maven itself uses by default."""
    return Path(os.environ.get("HOME", "~")).expanduser() / ".m2" / "repository"


def jar_path(coordinate: str, repository: Path) -> Path:
    """Where Maven keeps the jar of ``group:artifact:version``."""
    group, artifact, version = coordinate.split(":")
    return repository.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.jar")


def with_dependencies(coordinates: list[str]) -> list[str] | None:
    """``coordinates`` with the dependencies of the known ones, or ``None`` when one is not
    known here (Ivy then resolves its dependencies)."""
    closure: list[str] = []
    for coordinate in coordinates:
        group = next((g for g in GROUPS.values() if coordinate in g), None)
        if group is None:
            return None
        closure += [c for c in group if c not in closure]
    return closure


def local_jars(coordinates: list[str], repository: Path) -> tuple[list[Path], list[str]]:
    """The jar files of ``coordinates`` and their dependencies in ``repository``, and the
    coordinates whose jar is not there (all of them when a dependency is not known here)."""
    closure = with_dependencies(coordinates)
    if closure is None:
        return [], coordinates
    paths = {c: jar_path(c, repository) for c in closure}
    missing = [c for c, path in paths.items() if not path.is_file()]
    return ([] if missing else list(paths.values())), missing


def main(argv: list[str] | None = None) -> int:
    """Print the coordinates of a group, one per line (``make jars`` fetches them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", choices=sorted(GROUPS))
    args = parser.parse_args(argv)
    print("\n".join(GROUPS[args.group]))  # noqa: T201  (the command's output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
