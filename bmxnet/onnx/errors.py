"""The exceptions of :mod:`bmxnet.onnx` (no dependencies, so that they import anywhere)."""

__all__ = ["OnnxError", "OnnxImportError", "OnnxExportError"]


class OnnxError(ValueError):
    """A model that cannot be exported to or imported from ONNX; the message names the file or
    node and the fix."""


class OnnxImportError(OnnxError):
    """An ONNX model that cannot be imported: malformed, or containing unsupported operators."""


class OnnxExportError(OnnxError):
    """An MXNet network that cannot be exported to ONNX."""
