"""Preprocessing pipeline: ``ingested_images`` -> ``preprocessed_images``, ``image_quarantine``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.preprocessing.nodes import check_images, quarantine_images


def create_pipeline(**kwargs) -> Pipeline:
    """Decode-check every image; the ones that fail also go to the quarantine."""
    return Pipeline(
        [
            node(
                check_images,
                inputs=["ingested_images", "params:image", "params:preprocessing"],
                outputs="preprocessed_images",
                name="check_images",
            ),
            node(
                quarantine_images,
                "preprocessed_images",
                "image_quarantine",
                name="quarantine_images",
            ),
        ]
    )
