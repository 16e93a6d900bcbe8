"""Embedding pipeline: ``ingested_images`` -> ``embedding_store`` (only what it lacks),
``image_embeddings``, ``image_quarantine``, ``image_counts``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.embedding.nodes import (
    embed_images,
    load_model,
    quarantine_images,
    reconcile_counts,
    select_embeddings,
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
                inputs={
                    "ingested_images": "ingested_images",
                    "image_reader": "image_reader",
                    "stored_embeddings": "stored_embeddings",
                    "model": "model_artifact",
                    "image": "params:image",
                    "params": "params:embedding",
                },
                outputs=["embedding_store", "image_changes"],
                name="embed_images",
            ),
            node(
                select_embeddings,
                inputs=["ingested_images", "embedding_store", "model_artifact", "params:image"],
                outputs="image_embeddings",
                name="select_embeddings",
            ),
            node(
                quarantine_images, "image_embeddings", "image_quarantine", name="quarantine_images"
            ),
            node(
                reconcile_counts,
                inputs=["ingested_images", "image_embeddings", "image_changes"],
                outputs="image_counts",
                name="reconcile_counts",
            ),
        ],
        namespace="embedding",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
