"""Classification pipeline: the head's inputs (``pca_features`` or ``image_embeddings``) ->
the head chosen on validation, the classifier, metrics, confusion matrix, sweep."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.classification.nodes import (
    accuracy_vs_k,
    evaluate_classifier,
    head_inputs,
    select_head,
    train_classifier,
)
from fruits_kedro.pipelines.classification.plots import plot_accuracy_vs_k, plot_confusion_matrix


def create_pipeline(**kwargs) -> Pipeline:
    """Choose the head on validation, train on ``Training``, evaluate on ``Test``, sweep k."""
    return Pipeline(
        [
            node(
                select_head,
                ["pca_features", "image_embeddings", "params:classification"],
                "classification_head",
                name="select_head",
            ),
            node(
                head_inputs,
                ["pca_features", "image_embeddings", "classification_head"],
                "head_inputs",
                name="head_inputs",
            ),
            node(
                train_classifier,
                [
                    "head_inputs",
                    "saved_classifier_model",
                    "params:classification",
                    "classification_head",
                ],
                "classifier_model",
                name="train_classifier",
            ),
            node(
                evaluate_classifier,
                [
                    "head_inputs",
                    "classifier_model",
                    "pca_variance",
                    "params:classification",
                    "classification_head",
                ],
                ["classification_metrics", "confusion_matrix", "test_predictions"],
                name="evaluate_classifier",
            ),
            node(
                accuracy_vs_k,
                [
                    "pca_features",
                    "classifier_model",
                    "pca_variance",
                    "classification_metrics",
                    "params:classification",
                ],
                "accuracy_vs_k",
                name="sweep_k",
            ),
            node(
                plot_confusion_matrix,
                "confusion_matrix",
                "confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
            node(
                plot_accuracy_vs_k, "accuracy_vs_k", "accuracy_vs_k_plot", name="plot_accuracy_vs_k"
            ),
        ],
        namespace="classification",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
