"""Embedding pipeline: ``preprocessed_images`` -> ``image_embeddings``, ``image_counts``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.embedding.nodes import embed_images, load_model, reconcile_counts


def create_pipeline(**kwargs) -> Pipeline:
    """Broadcast the model, embed every usable image, then account for every input."""
    return Pipeline(
        [
            node(
                load_model,
                ["params:image", "params:embedding"],
                "model_artifact",
                name="load_model",
            ),
            node(
                embed_images,
                inputs=[
                    "preprocessed_images",
                    "model_artifact",
                    "params:image",
                    "params:embedding",
                ],
                outputs="image_embeddings",
                name="embed_images",
            ),
            node(
                reconcile_counts,
                inputs=["ingested_images", "image_embeddings", "image_quarantine"],
                outputs="image_counts",
                name="reconcile_counts",
            ),
        ]
    )
