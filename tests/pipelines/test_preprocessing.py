"""Preprocessing: decode check of every image, and the quarantine of the bad ones."""

from __future__ import annotations

from fruits_kedro.pipelines.preprocessing.nodes import (
    QUARANTINE_COLUMNS,
    check_images,
    quarantine_images,
    usable,
)
from tests.conftest import jpeg_bytes, noisy_jpeg_bytes

IMAGE = {"input_size": 32, "resample": "bilinear"}
PARAMS = {"partitions": None, "partitions_per_core": 2}


def ingested(spark, contents: dict[str, bytes]):
    rows = [
        (
            f"id-{name}",
            f"file:/in/Training/Fruit/{name}",
            "Fruit",
            "Training",
            len(content),
            bytearray(content),
        )
        for name, content in contents.items()
    ]
    columns = ["image_id", "path", "label", "split", "size_bytes", "content"]
    return spark.createDataFrame(rows, columns)


def test_good_images_pass_with_their_facts_and_bad_ones_get_a_reason(spark):
    contents = {
        "good.jpg": jpeg_bytes(size=(40, 30)),
        "empty.jpg": b"",
        "text.jpg": b"hello",
        "truncated.jpg": noisy_jpeg_bytes(3)[:2000],
    }

    checked = check_images(ingested(spark, contents), IMAGE, PARAMS)

    rows = {r.path.rsplit("/", 1)[1]: r for r in checked.collect()}
    assert rows.keys() == contents.keys()
    good = rows["good.jpg"]
    assert (good.format, good.mode, good.width, good.height, good.reason) == (
        "JPEG",
        "RGB",
        40,
        30,
        None,
    )
    assert rows["empty.jpg"].reason == "empty file (0 bytes)"
    assert rows["text.jpg"].reason.startswith("not an image")
    assert "truncated" in rows["truncated.jpg"].reason


def test_quarantine_and_usable_split_every_row_once(spark):
    contents = {f"ok{i}.jpg": jpeg_bytes((i, i, i)) for i in range(5)} | {"bad.jpg": b"?"}
    checked = check_images(ingested(spark, contents), IMAGE, PARAMS)

    quarantine = quarantine_images(checked)
    kept = usable(checked)

    assert quarantine.columns == QUARANTINE_COLUMNS
    assert [r.path for r in quarantine.collect()] == ["file:/in/Training/Fruit/bad.jpg"]
    assert kept.count() == 5
