"""Fruits! image pipeline: Spark ingestion, MobileNetV2 embeddings and PCA."""

__version__ = "0.1.0"
