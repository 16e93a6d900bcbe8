"""Ingestion pipeline: ``raw_images`` -> ``ingested_images``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.ingestion.nodes import label_images


def create_pipeline(**kwargs) -> Pipeline:
    """Label every image file with its class and split."""
    return Pipeline(
        [
            node(
                label_images,
                inputs=["raw_images", "params:ingestion"],
                outputs="ingested_images",
                name="label_images",
            )
        ],
        namespace="ingestion",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
