"""Gluon layers for quantized networks: QConv2D, QDense, QActivation."""
from .layers import QActivation, QConv2D, QDense

__all__ = ["QActivation", "QConv2D", "QDense"]
