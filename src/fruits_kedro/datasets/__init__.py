"""Kedro datasets of the project."""

from fruits_kedro.datasets.embedding_store_dataset import EmbeddingStoreDataset
from fruits_kedro.datasets.image_files_dataset import ImageFilesDataset
from fruits_kedro.datasets.image_reader_dataset import ImageReaderDataset
from fruits_kedro.datasets.model_datasets import BytesDataset, ModelArtifactDataset
from fruits_kedro.datasets.plot_dataset import PlotDataset
from fruits_kedro.datasets.previous_dataset import PreviousDataset
from fruits_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset
from fruits_kedro.datasets.swap_spark_dataset import SwapSparkDataset

__all__ = [
    "BytesDataset",
    "EmbeddingStoreDataset",
    "ImageFilesDataset",
    "ImageReaderDataset",
    "ModelArtifactDataset",
    "PlotDataset",
    "PreviousDataset",
    "SparkMLModelDataset",
    "SwapSparkDataset",
]
