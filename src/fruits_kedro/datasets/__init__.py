"""Kedro datasets of the project."""

from fruits_kedro.datasets.image_files_dataset import ImageFilesDataset
from fruits_kedro.datasets.model_datasets import ModelArtifactDataset, PredictorDataset
from fruits_kedro.datasets.plot_dataset import PlotDataset
from fruits_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset

__all__ = [
    "ImageFilesDataset",
    "ModelArtifactDataset",
    "PlotDataset",
    "PredictorDataset",
    "SparkMLModelDataset",
]
