"""What the converter reports: per-layer actions, sizes, files, checks and verification.

:class:`ConversionReport` is what :func:`~bmxnet.converter.convert_model` and
:func:`~bmxnet.converter.convert_checkpoint` return; ``format()`` is the table ``model_converter``
prints.
"""
import numpy as np

__all__ = ["LayerReport", "ConversionReport", "nbytes"]


class LayerReport:
    """What the converter did with one Q-layer.

    Attributes
    ----------
    name, op : str
        Node name and operator (QConvolution / QFullyConnected).
    action : str
        'packed', 'copied' (not 1-bit) or 'already packed'.
    reason : str
        Why a layer was copied (e.g. 'act_bit=2, weight_bit=4').
    weight : str
        Name of the weight parameter.
    weight_shape, packed_shape : tuple or None
    weight_bits, packed_bits : int
        Storage of the weight before and after (float32 = 32 bits per weight; packed = 64 bits
        per word, unused padding bits included).
    scale : str or None
        Name of the added ``weight_scale`` parameter (scaling_mode='forward').
    max_abs_diff : float or None
        Largest output difference of this layer between the models (after verification).
    """

    def __init__(self, name, op, action, weight, weight_shape=None, reason="", act_bit=1,
                 weight_bit=1):
        self.name, self.op, self.action, self.weight = name, op, action, weight
        self.weight_shape = tuple(weight_shape) if weight_shape is not None else None
        self.reason, self.act_bit, self.weight_bit = reason, act_bit, weight_bit
        self.packed_shape = None
        self.weight_bits = self.packed_bits = 0
        self.scale = None
        self.max_abs_diff = None

    @property
    def ratio(self):
        return self.weight_bits / self.packed_bits if self.packed_bits else None

    def to_dict(self):
        return {k: getattr(self, k) for k in ("name", "op", "action", "reason", "weight",
                                              "weight_shape", "packed_shape", "weight_bits",
                                              "packed_bits", "ratio", "scale", "max_abs_diff")}


def nbytes(arrays):
    """Bytes of all arrays of a {name: array} dict."""
    return int(sum(v.size * np.dtype(v.dtype).itemsize for v in arrays.values()))


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


class ConversionReport:
    """Result of a conversion: per-layer actions, sizes, output files and verification.

    Attributes
    ----------
    layers : list of LayerReport
    params_bytes_before, params_bytes_after : int
        All parameter tensors (arg and aux) of the model before / after conversion.
    binary_bits_before, binary_bits_after : int
        The packed layers' weights only, before (float) and after (packed words).
    ratio : float or None
        ``binary_bits_before / binary_bits_after`` (exactly 32.0 when every packed layer's
        input channel count is a multiple of 64; smaller otherwise, because each run of
        channels is padded to whole 64-bit words).
    files : dict
        After :func:`convert_checkpoint`: 'symbol_in', 'params_in', 'symbol_out', 'params_out'
        paths and, when written, their sizes in 'sizes' ({path: bytes}).
    verify : dict or None
        After verification: 'samples', 'data_shape', 'max_abs_diff' (over the model outputs),
        'argmax_equal' (bool) and 'layers' ({layer: max_abs_diff}).
    dry_run : bool
    loss_heads : list of (name, op, label name)
        Loss heads written as their forward computation (``SoftmaxOutput`` -> ``softmax``),
        their label input dropped.
    data_shape : tuple or None
        After :func:`convert_checkpoint`: the input shape the converted model was checked to
        run with (given with ``--data-shape`` or worked out from the weights).
    """

    def __init__(self, layers, params_before, params_after, source="model"):
        self.layers = layers
        self.params_bytes_before = nbytes(params_before)
        self.params_bytes_after = nbytes(params_after)
        self.source = source
        self.files = {}
        self.verify = None
        self.dry_run = False
        self.loss_heads = []
        self.data_shape = None

    @property
    def packed_layers(self):
        return [layer for layer in self.layers if layer.action in ("packed", "repacked")]

    @property
    def binary_bits_before(self):
        return sum(layer.weight_bits for layer in self.packed_layers)

    @property
    def binary_bits_after(self):
        return sum(layer.packed_bits for layer in self.packed_layers)

    @property
    def ratio(self):
        after = self.binary_bits_after
        return self.binary_bits_before / after if after else None

    def to_dict(self):
        return {"source": self.source, "layers": [layer.to_dict() for layer in self.layers],
                "params_bytes_before": self.params_bytes_before,
                "params_bytes_after": self.params_bytes_after,
                "binary_bits_before": self.binary_bits_before,
                "binary_bits_after": self.binary_bits_after, "ratio": self.ratio,
                "files": dict(self.files), "verify": self.verify, "dry_run": self.dry_run,
                "loss_heads": [list(h) for h in self.loss_heads], "data_shape": self.data_shape}

    def format(self):
        """The human-readable table printed by ``model_converter``."""
        lines = []
        head = "%-28s %-16s %-8s %-18s %-16s %11s %11s %7s" % (
            "layer", "op", "action", "weight", "packed", "before", "after", "ratio")
        lines.append(head)
        lines.append("-" * len(head))
        for layer in self.layers:
            if layer.action in ("packed", "repacked"):
                extra = "  + %s" % layer.scale if layer.scale else ""
                if layer.action == "repacked":
                    extra = "  (%s)" % layer.reason
                lines.append("%-28s %-16s %-8s %-18s %-16s %11s %11s %6.2fx%s" % (
                    layer.name, layer.op, layer.action[:-2], str(layer.weight_shape),
                    str(layer.packed_shape), _fmt_bytes(layer.weight_bits // 8),
                    _fmt_bytes(layer.packed_bits // 8), layer.ratio, extra))
            else:
                lines.append("%-28s %-16s %-8s %s" % (
                    layer.name, layer.op, "copy" if layer.action == "copied" else "keep",
                    layer.reason))
        packed = self.packed_layers
        if packed:
            lines.append("1-bit weights: %s -> %s (%d -> %d bits), compression %.2fx%s" % (
                _fmt_bytes(self.binary_bits_before // 8), _fmt_bytes(self.binary_bits_after // 8),
                self.binary_bits_before, self.binary_bits_after, self.ratio,
                "" if abs(self.ratio - 32.0) < 1e-12 else
                " (below 32x: input channel counts that are not multiples of 64 are padded to "
                "whole 64-bit words)"))
        else:
            lines.append("no 1-bit QConvolution / QFullyConnected layer to pack")
        lines.append("all parameters: %s -> %s (%.2fx)" % (
            _fmt_bytes(self.params_bytes_before), _fmt_bytes(self.params_bytes_after),
            self.params_bytes_before / max(self.params_bytes_after, 1)))
        for name, op, label in self.loss_heads:
            lines.append("loss head '%s' (%s) written as its inference output%s" % (
                name, op, "; its label input '%s' is dropped" % label if label else ""))
        if self.data_shape is not None:
            lines.append("checked: the converted model runs for input shape %s"
                         % (tuple(self.data_shape),))
        sizes = self.files.get("sizes", {})
        for key in ("params_in", "params_out", "symbol_out"):
            path = self.files.get(key)
            if path and path in sizes:
                lines.append("%-10s %s (%s)" % (key.replace("_", " ") + ":", path,
                                                _fmt_bytes(sizes[path])))
        if self.verify is not None:
            v = self.verify
            lines.append("verify: %d random input(s) of shape %s: max |difference| of the outputs "
                         "= %g, argmax equal: %s" % (v["samples"], tuple(v["data_shape"]),
                                                     v["max_abs_diff"], v["argmax_equal"]))
            for name, diff in v["layers"].items():
                lines.append("  %-28s max |difference| = %g" % (name, diff))
        if self.dry_run:
            lines.append("dry run: nothing written")
        return "\n".join(lines)

    def __str__(self):
        return self.format()
