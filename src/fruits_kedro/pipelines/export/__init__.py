"""Export: the embedding model, PCA and classifier as one predictor for ``fruits-predict``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
