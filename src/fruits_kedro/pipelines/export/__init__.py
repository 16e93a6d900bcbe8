"""Export: the app's model files (MobileNetV2 and the folded head in one TFLite graph) and card."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
