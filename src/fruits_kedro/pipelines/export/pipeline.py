"""Export pipeline: the trained stages -> the app's model files, their accuracy and model card."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.export.nodes import (
    app_backbones,
    evaluate_app_models,
    export_app_models,
    model_card,
)


def create_pipeline(**kwargs) -> Pipeline:
    """MobileNetV2 and the folded head in one TFLite file (fp32, int8), checked and described."""
    return Pipeline(
        [
            node(
                app_backbones,
                ["model_artifact", "params:image", "params:embedding", "params:export"],
                "app_backbones",
                name="app_backbones",
            ),
            node(
                export_app_models,
                {
                    "backbones": "app_backbones",
                    "pca_model": "pca_model",
                    "classifier_model": "classifier_model",
                    "classification_head": "classification_head",
                    "image": "params:image",
                    "params": "params:export",
                },
                ["app_model", "app_model_int8"],
                name="export_app_models",
            ),
            node(
                evaluate_app_models,
                [
                    "app_model",
                    "app_model_int8",
                    "ingested_images",
                    "params:image",
                    "params:classification",
                ],
                "app_accuracy",
                name="evaluate_app_models",
            ),
            node(
                model_card,
                {
                    "app_model": "app_model",
                    "app_model_int8": "app_model_int8",
                    "app_accuracy": "app_accuracy",
                    "pca_features": "pca_features",
                    "model_artifact": "model_artifact",
                    "classification_metrics": "classification_metrics",
                    "image": "params:image",
                    "embedding": "params:embedding",
                    "classification": "params:classification",
                    "params": "params:export",
                },
                ["model_card", "model_card_md"],
                name="model_card",
            ),
        ],
        namespace="export",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
