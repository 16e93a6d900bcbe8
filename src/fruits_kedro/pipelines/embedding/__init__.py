"""Embedding: MobileNetV2 features for every usable image, on the executors."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
