"""Write-then-swap of a folder: a failed write, or a swap cut short, leaves the previous one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fruits_kedro.datasets.swap import NEW, OLD, folder_exists, readable_path, swap_write

if TYPE_CHECKING:
    from collections.abc import Callable


def writes(text: str) -> Callable[[str], None]:
    """A write of one file ``part`` holding ``text`` into the folder it is given."""

    def write(folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "part").write_text(text)

    return write


def fails_halfway(folder: str) -> None:
    """A write that leaves part of its output, then fails."""
    Path(folder).mkdir(parents=True)
    (Path(folder) / "part").write_text("half")
    raise RuntimeError("killed mid-write")


def contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


def siblings(target: Path) -> list[str]:
    return sorted(path.name for path in target.parent.iterdir())


def test_a_first_write_puts_the_folder_in_place(spark, tmp_path):
    target = tmp_path / "out"

    swap_write(str(target), writes("one"), spark)

    assert contents(target) == {"part": "one"}
    assert siblings(target) == ["out"]  # no new or old folder left
    assert folder_exists(str(target), spark)
    assert readable_path(str(target), spark) == str(target)


def test_a_second_write_replaces_the_first(spark, tmp_path):
    target = tmp_path / "out"
    swap_write(str(target), writes("one"), spark)

    swap_write(str(target), writes("two"), spark)

    assert contents(target) == {"part": "two"}
    assert siblings(target) == ["out"]


def test_a_failed_write_leaves_the_old_folder_readable_and_equal(spark, tmp_path):
    target = tmp_path / "out"
    swap_write(str(target), writes("one"), spark)

    with pytest.raises(RuntimeError, match="killed mid-write"):
        swap_write(str(target), fails_halfway, spark)

    assert readable_path(str(target), spark) == str(target)
    assert contents(target) == {"part": "one"}
    swap_write(str(target), writes("two"), spark)  # the half-written folder is cleared first
    assert contents(target) == {"part": "two"}
    assert siblings(target) == ["out"]


def cut_between_the_renames(target: Path, text: str) -> None:
    """What a swap killed after ``path -> .__old`` and before ``.__new -> path`` leaves."""
    old = target.with_name(target.name + OLD)
    old.mkdir()
    (old / "part").write_text(text)
    new = target.with_name(target.name + NEW)
    new.mkdir()
    (new / "part").write_text("complete but not swapped in")


def test_a_swap_cut_between_the_renames_is_read_from_the_old_folder(spark, tmp_path):
    target = tmp_path / "out"
    cut_between_the_renames(target, "one")

    assert readable_path(str(target), spark) == str(target) + OLD
    assert folder_exists(str(target), spark)
    assert contents(tmp_path / ("out" + OLD)) == {"part": "one"}


def test_the_next_write_repairs_a_cut_swap(spark, tmp_path):
    target = tmp_path / "out"
    cut_between_the_renames(target, "one")

    swap_write(str(target), writes("two"), spark)

    assert contents(target) == {"part": "two"}
    assert siblings(target) == ["out"]


def test_a_failed_write_after_a_cut_swap_puts_the_old_folder_back(spark, tmp_path):
    target = tmp_path / "out"
    cut_between_the_renames(target, "one")

    with pytest.raises(RuntimeError):
        swap_write(str(target), fails_halfway, spark)

    assert readable_path(str(target), spark) == str(target)
    assert contents(target) == {"part": "one"}


def test_nothing_written_is_nothing_readable(spark, tmp_path):
    target = tmp_path / "never"

    assert not folder_exists(str(target), spark)
    assert readable_path(str(target), spark) == str(target)


def test_a_spark_write_to_a_file_uri_is_swapped_in(spark, tmp_path):
    uri = f"file:{tmp_path}/table"
    frame = spark.createDataFrame([(1, "a"), (2, "b")], "n int, s string")

    swap_write(uri, frame.write.parquet, spark)
    swap_write(uri, frame.filter("n = 2").write.parquet, spark)

    assert [tuple(r) for r in spark.read.parquet(uri).collect()] == [(2, "b")]
    assert siblings(tmp_path / "table") == ["table"]
