"""What the stages share: the principal components' columns, and the fitted Spark ML models'
stages, labels and ``k``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.ml.feature import IndexToString, PCAModel, StandardScalerModel
from pyspark.ml.functions import array_to_vector
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

COMPONENTS = "pca"  # the principal components of an image, an array column of pca_features
COMPONENTS_VECTOR = "pca_vector"  # the same as the Spark ML vector the classifier reads


def with_component_vector(pca_features: DataFrame) -> DataFrame:
    """``pca_features`` plus the components as a Spark ML vector (JVM side, no Python)."""
    return pca_features.withColumn(COMPONENTS_VECTOR, array_to_vector(F.col(COMPONENTS)))


def pca_stage(model: PipelineModel) -> PCAModel:
    """The fitted PCA of the centering + PCA pipeline."""
    stage = model.stages[-1]
    if not isinstance(stage, PCAModel):
        raise TypeError(f"expected a PCA model as the last stage, got {type(stage).__name__}")
    return stage


def labels_of(classifier_model: PipelineModel) -> list[str]:
    """The class labels of a fitted classifier, in the order of its outputs."""
    stage = classifier_model.stages[-1]
    if not isinstance(stage, IndexToString):
        raise TypeError(f"expected IndexToString as the last stage, got {type(stage).__name__}")
    return list(stage.getLabels())


def k_of(classifier_model: PipelineModel) -> int:
    """The number of principal components a fitted classifier reads (its scaler's width)."""
    stage = classifier_model.stages[0]
    if not isinstance(stage, StandardScalerModel):
        raise TypeError(f"expected a StandardScaler as the first stage, got {type(stage).__name__}")
    return len(stage.mean)
