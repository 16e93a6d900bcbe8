"""Embedding pipeline: ``ingested_images`` -> ``image_embeddings``, ``image_quarantine``,
``image_counts``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.embedding.nodes import (
    embed_images,
    load_model,
    quarantine_images,
    reconcile_counts,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Broadcast the model, decode and embed every image, quarantine the bad ones, then account
    for every input."""
    return Pipeline(
        [
            node(
                load_model,
                ["ingested_images", "params:image", "params:embedding"],
                "model_artifact",
                name="load_model",
            ),
            node(
                embed_images,
                inputs=["ingested_images", "model_artifact", "params:image", "params:embedding"],
                outputs="image_embeddings",
                name="embed_images",
            ),
            node(
                quarantine_images, "image_embeddings", "image_quarantine", name="quarantine_images"
            ),
            node(
                reconcile_counts,
                inputs=["ingested_images", "image_embeddings"],
                outputs="image_counts",
                name="reconcile_counts",
            ),
        ],
        namespace="embedding",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
