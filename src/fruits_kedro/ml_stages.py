"""What the stages share about the fitted Spark ML models: their stages, labels and inputs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pyspark.ml.feature import IndexToString, PCAModel, VectorAssembler

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

_COMPONENT = re.compile(r"pc_(\d+)")


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


def inputs_of(classifier_model: PipelineModel) -> list[str]:
    """The ``pc_<n>`` columns a fitted classifier reads: its ``k`` is their number."""
    stage = classifier_model.stages[0]
    if not isinstance(stage, VectorAssembler):
        raise TypeError(f"expected VectorAssembler as the first stage, got {type(stage).__name__}")
    return list(stage.getInputCols())


def component_columns(df: DataFrame, k: int | None = None) -> list[str]:
    """The ``pc_1 .. pc_k`` columns of ``df`` in order (all of them when ``k`` is None)."""
    found = sorted(
        (int(m.group(1)), c) for c in df.columns if (m := _COMPONENT.fullmatch(c)) is not None
    )
    if not found:
        raise ValueError(f"no pc_<n> columns in the PCA features: {df.columns}")
    return [c for _, c in found][: k or None]
