"""Reduction: Spark ML PCA of the embeddings, with its explained-variance report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
