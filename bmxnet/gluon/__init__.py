"""Gluon layers for quantized networks: QConv2D, QDense, QActivation, and ReActNet's blocks."""
from .blocks import LearnableBias, RPReLU, RSign
from .layers import QActivation, QConv2D, QDense

__all__ = ["QActivation", "QConv2D", "QDense", "LearnableBias", "RPReLU", "RSign"]
