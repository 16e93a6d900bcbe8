"""Model code, free of Spark: image decoding, MobileNetV2 weights and inference engines."""
