"""Classification pipeline: how good are the PCA features at telling the fruit apart."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
