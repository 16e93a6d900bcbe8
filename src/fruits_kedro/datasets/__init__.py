"""Kedro datasets of the project."""

from fruits_kedro.datasets.model_datasets import ModelArtifactDataset, PredictorDataset
from fruits_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset

__all__ = ["ModelArtifactDataset", "PredictorDataset", "SparkMLModelDataset"]
