"""Tests of the scale-corpus builder on small Pillow-made images in the Fruits-360 layout."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from fruits_kedro.tools.corpus import MARKER, CorpusError, Job, main, plan
from tests.conftest import jpeg_bytes, noisy_jpeg_bytes, write_images

VARIANT = re.compile(r"^(?P<stem>.+)_aug(?P<k>\d+)\.jpg$")
ODD_SIZE = (60, 40)
FOLDER_COLOURS = {
    "Training/Red": (210, 30, 30),
    "Training/Green": (30, 190, 40),
    "Test/Red": (30, 40, 200),  # same class name, other split: must not receive Training's
    "Test/Dark": (50, 50, 50),
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """13 distinct images: 2 splits x 2 classes x 3 JPEGs of 48 px, plus one RGBA ``.PNG``."""
    root = tmp_path / "source"
    write_images(root, classes=2, per_split=3, size=48)
    png = Image.new("RGBA", ODD_SIZE, (250, 120, 10, 255))
    png.paste((20, 90, 200, 255), (10, 5, 40, 30))
    png.save(root / "Training" / "Fruit 1" / "odd_100.PNG", format="PNG")
    return root


def images(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` but the marker: relative path -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def build(capsys, source: Path, dest: Path, count: int, *extra: str) -> dict:
    """Run the command in this process (one worker unless ``extra`` says); return its summary."""
    argv = ["--source", str(source), "--dest", str(dest), "--images", str(count)]
    argv += [*extra] if "--workers" in extra else ["--workers", "1", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def refused(source: Path, dest: Path, *extra: str) -> int:
    """Run the command with one worker; return its exit code."""
    argv = ["--source", str(source), "--dest", str(dest), "--images", "20", "--workers", "1"]
    return main([*argv, *extra])


def origin(relative: str) -> tuple[str, int]:
    """The source stem path (``split/class/stem``) and variant number of an output file."""
    path = PurePosixPath(relative)
    match = VARIANT.match(path.name)
    if match is None:
        return str(path.with_suffix("")), 0
    return str(path.parent / match["stem"]), int(match["k"])


def pixels(data: bytes) -> np.ndarray:
    """Decode ``data`` into an RGB array of signed integers."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_exact_count_with_layout_and_labels_kept(capsys, source, tmp_path):
    dest = tmp_path / "corpus"

    summary = build(capsys, source, dest, 30)

    written = images(dest)
    by_stem = {str(PurePosixPath(p).with_suffix("")): p for p in images(source)}
    assert len(written) == 30
    assert summary["images"] == 30
    assert summary["sources"] == 13
    assert summary["augmented"] == 17
    assert summary["bytes"] == sum(len(data) for data in written.values())
    assert summary["dest"] == str(dest.resolve())
    assert summary["seconds"] >= 0
    origins = [origin(p) for p in written]
    # every output sits in its source's <split>/<class> folder: the stem path includes both
    assert {stem for stem, _ in origins} == set(by_stem)
    # round-robin: 17 variants over 13 sources, 4 of them get a second one
    assert sorted(Counter(stem for stem, k in origins if k).values()) == [1] * 9 + [2] * 4
    assert json.loads((dest / MARKER).read_text())["images"] == 30


def test_every_variant_stays_in_its_source_split_and_class(capsys, tmp_path):
    source = tmp_path / "source"
    for folder, colour in FOLDER_COLOURS.items():
        (source / folder).mkdir(parents=True)
        for i in range(2):
            (source / folder / f"{i}_100.jpg").write_bytes(jpeg_bytes(colour, (32, 32)))

    build(capsys, source, tmp_path / "corpus", 40)

    colours = np.array(list(FOLDER_COLOURS.values()))
    for relative, data in images(tmp_path / "corpus").items():
        mean = pixels(data).reshape(-1, 3).mean(axis=0)
        nearest = list(FOLDER_COLOURS)[np.abs(colours - mean).sum(axis=1).argmin()]
        assert relative.startswith(f"{nearest}/"), relative


def test_originals_unchanged_and_variants_new_images_of_the_source_size(capsys, source, tmp_path):
    dest = tmp_path / "corpus"

    build(capsys, source, dest, 40)

    originals = images(source)
    by_stem = {str(PurePosixPath(p).with_suffix("")): p for p in originals}
    for relative, data in images(dest).items():
        stem, k = origin(relative)
        if k == 0:
            assert data == originals[relative]
            continue
        before = pixels(originals[by_stem[stem]])
        after = pixels(data)
        assert Image.open(io.BytesIO(data)).format == "JPEG"
        assert after.shape == before.shape, relative
        assert np.abs(after - before).mean() > 2, relative
    assert (dest / "Training/Fruit 1/odd_100_aug1.jpg").is_file()


def test_same_seed_same_bytes_and_other_seed_other_bytes(capsys, source, tmp_path):
    first = build(capsys, source, tmp_path / "a", 30)
    build(capsys, source, tmp_path / "b", 30, "--seed", "0")
    build(capsys, source, tmp_path / "c", 30, "--seed", "1")

    a, b, c = (images(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    variants = [p for p in a if origin(p)[1]]
    assert len(variants) == first["augmented"] == 17
    assert all(a[p] != c[p] for p in variants)
    assert all(a[p] == c[p] for p in a if p not in variants)


def test_two_workers_write_the_same_files_as_one(capsys, source, tmp_path):
    build(capsys, source, tmp_path / "one", 45)

    summary = build(capsys, source, tmp_path / "two", 45, "--workers", "2")

    assert summary["images"] == 45
    assert images(tmp_path / "two") == images(tmp_path / "one")


def test_fewer_images_than_sources_copies_an_even_subset(capsys, source, tmp_path):
    dest = tmp_path / "corpus"

    summary = build(capsys, source, dest, 5)

    written, originals = images(dest), images(source)
    assert summary["images"] == 5
    assert summary["augmented"] == 0
    assert len(written) == 5
    assert all(data == originals[p] for p, data in written.items())
    assert {p.split("/")[0] for p in written} == {"Training", "Test"}


def test_a_fixed_quality_is_accepted(capsys, source, tmp_path):
    summary = build(capsys, source, tmp_path / "corpus", 20, "--quality", "80")

    assert summary["images"] == 20


@pytest.mark.parametrize(
    "option",
    [("--quality", "99"), ("--quality", "90-80"), ("--quality", "high"), ("--images", "0")],
)
def test_bad_options_are_refused_before_anything_is_written(source, tmp_path, option):
    with pytest.raises(SystemExit) as exit_info:
        refused(source, tmp_path / "corpus", *option)

    assert exit_info.value.code == 2
    assert not (tmp_path / "corpus").exists()


def test_refuses_a_destination_inside_the_source(source, caplog):
    assert refused(source, source / "Training" / "more") == 1
    assert "overlaps the source" in caplog.text
    assert not (source / "Training" / "more").exists()


def test_refuses_a_destination_that_is_not_empty(source, tmp_path, caplog):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")

    assert refused(source, dest) == 1
    assert "not empty" in caplog.text
    assert refused(source, dest, "--force") == 1
    assert MARKER in caplog.text
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_refuses_a_destination_that_is_a_file(source, tmp_path, caplog):
    dest = tmp_path / "file.jpg"
    dest.write_bytes(b"x")

    assert refused(source, dest) == 1
    assert "not a folder" in caplog.text


@pytest.mark.parametrize("mark", ["pyproject.toml", ".git"])
def test_refuses_a_destination_inside_a_project(source, tmp_path, caplog, mark):
    project = tmp_path / "project"
    project.mkdir()
    (project / mark).write_text("")

    assert refused(source, project / "data" / "corpus") == 1
    assert "outside the repository" in caplog.text
    assert not (project / "data").exists()


def test_refuses_a_source_without_images(tmp_path, caplog):
    (tmp_path / "empty").mkdir()

    assert refused(tmp_path / "empty", tmp_path / "corpus") == 1
    assert "no .jpg" in caplog.text
    assert refused(tmp_path / "missing", tmp_path / "corpus") == 1
    assert "not a folder" in caplog.text


def test_force_resumes_a_build_of_the_same_settings_only(capsys, source, tmp_path, caplog):
    dest = tmp_path / "corpus"
    build(capsys, source, dest, 30)
    complete = images(dest)
    assert refused(source, dest) == 1  # our own folder, but no --force
    for relative in ("Test/Fruit 0/0_100.jpg", "Training/Fruit 1/1_100_aug1.jpg"):
        (dest / relative).unlink()

    summary = build(capsys, source, dest, 30, "--force")

    assert images(dest) == complete
    assert summary["bytes"] == sum(len(data) for data in complete.values())
    caplog.clear()
    assert refused(source, dest, "--images", "30", "--seed", "3", "--force") == 1
    assert "other settings" in caplog.text


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_broken_source_is_named(source, tmp_path, caplog, workers):
    broken = source / "Test" / "Fruit 0" / "zz_broken.jpg"
    broken.write_bytes(noisy_jpeg_bytes(5)[:40])

    assert refused(source, tmp_path / "corpus", "--images", "30", "--workers", workers) == 1
    assert str(broken) in caplog.text


def test_plan_names_variants_and_refuses_colliding_stems():
    jobs = plan(["Test/Kiwi/a.jpg", "Training/Kiwi/b.png"], 5)

    assert [job.target for job in jobs] == [
        "Test/Kiwi/a.jpg",
        "Training/Kiwi/b.png",
        "Test/Kiwi/a_aug1.jpg",
        "Training/Kiwi/b_aug1.jpg",
        "Test/Kiwi/a_aug2.jpg",
    ]
    assert Job("Test/Kiwi/a.jpg", 0).target == "Test/Kiwi/a.jpg"
    with pytest.raises(CorpusError, match="share this path"):
        plan(["Test/Kiwi/a.jpg", "Test/Kiwi/a.png"], 4)
