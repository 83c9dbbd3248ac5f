"""Bit packing of 1-bit weights into the int64 words of ``binarized_weights_only`` layers.

The layout is the one of ``operators/kernels/bmx_kernels.h`` (the single definition):

* a word is 64 bits, stored as int64 holding the uint64 bit pattern;
* bit ``j`` (least significant first) of word ``w`` holds element ``64 * w + j`` of a packed run;
* bit 1 means +1 (the float weight was ``>= 0``, so sign(0) = +1; NaN packs as -1);
* a run of ``n`` elements takes ``ceil(n / 64)`` words and the unused high bits are 0.

Packed runs go along the input channels:

========================  =========================  ==================================
layer                     float weight               packed words (int64)
========================  =========================  ==================================
QConvolution              (O, C/g, kh, kw)           (O, kh, kw, ceil((C/g) / 64))
QFullyConnected           (O, in_units)              (O, ceil(in_units / 64))
========================  =========================  ==================================

Everything here is vectorised numpy (``np.packbits`` / ``np.unpackbits`` with little bit
order); there is no loop over bits.

Examples
--------
>>> w = np.random.randn(64, 130, 3, 3).astype(np.float32)
>>> p = pack_conv_weights(w)                      # (64, 3, 3, 3) int64
>>> np.array_equal(unpack_conv_weights(p, 130), np.where(w >= 0, 1, -1))
True
"""
import numpy as np

__all__ = ["WORD_BITS", "words_for", "pack_signs", "unpack_signs", "pack_conv_weights",
           "unpack_conv_weights", "pack_dense_weights", "unpack_dense_weights"]

WORD_BITS = 64


def words_for(n):
    """Number of 64-bit words that hold ``n`` packed elements."""
    return (int(n) + WORD_BITS - 1) // WORD_BITS


def pack_signs(x):
    """Packs the signs of ``x`` along its last axis into int64 words.

    Parameters
    ----------
    x : array_like of float, shape (..., n)

    Returns
    -------
    numpy.ndarray of int64, shape (..., ceil(n / 64))
        Bit ``j`` of word ``w`` is 1 where ``x[..., 64 * w + j] >= 0``; unused high bits are 0.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("pack_signs needs at least one axis to pack, got a scalar")
    n = x.shape[-1]
    if n == 0:
        raise ValueError("pack_signs got an empty last axis; there is nothing to pack")
    nw = words_for(n)
    bits = np.zeros(x.shape[:-1] + (nw * WORD_BITS,), np.uint8)
    bits[..., :n] = x >= 0  # NaN >= 0 is False: NaN packs as -1, as in the C++ packer
    # packbits(little) puts element 8k+i into bit i of byte k; 8 little-endian bytes = one word.
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64).view(np.int64)


def unpack_signs(words, n):
    """Inverse of :func:`pack_signs`: the first ``n`` elements as float32 +1 / -1.

    Raises ``ValueError`` when the last axis does not hold ``ceil(n / 64)`` words or when a bit
    beyond ``n`` is set (a file not written by this packer).
    """
    words = np.asarray(words)
    if words.dtype not in (np.int64, np.uint64):
        raise ValueError("packed words must be int64 (or uint64), got %s" % words.dtype)
    nw = words_for(n)
    if words.ndim == 0 or words.shape[-1] != nw:
        raise ValueError("expected %d words per run of %d elements, got shape %s"
                         % (nw, n, words.shape))
    raw = np.ascontiguousarray(words.astype(np.uint64).astype("<u8")).view(np.uint8)
    bits = np.unpackbits(raw, axis=-1, bitorder="little")
    if bits[..., n:].any():
        raise ValueError("packed words have bits set beyond element %d (unused bits must be 0)"
                         % n)
    return np.where(bits[..., :n] == 1, np.float32(1), np.float32(-1))


def _check_ndim(w, ndim, what):
    if w.ndim != ndim:
        raise ValueError("%s weights must have %d dimensions, got shape %s" % (what, ndim, w.shape))


def pack_conv_weights(w):
    """Packs float conv weights (O, C/g, kh, kw) into int64 words (O, kh, kw, ceil((C/g)/64)).

    For every output channel and kernel tap, the signs of the group's input channels form one
    run (bit 1 = weight >= 0).
    """
    w = np.asarray(w)
    _check_ndim(w, 4, "convolution")
    return pack_signs(np.transpose(w, (0, 2, 3, 1)))


def unpack_conv_weights(packed, in_channels):
    """Inverse of :func:`pack_conv_weights`: float32 +1/-1 weights (O, in_channels, kh, kw)."""
    packed = np.asarray(packed)
    _check_ndim(packed, 4, "packed convolution")
    return np.ascontiguousarray(np.transpose(unpack_signs(packed, in_channels), (0, 3, 1, 2)))


def pack_dense_weights(w):
    """Packs float dense weights (O, in_units) into int64 words (O, ceil(in_units/64))."""
    w = np.asarray(w)
    _check_ndim(w, 2, "fully-connected")
    return pack_signs(w)


def unpack_dense_weights(packed, in_units):
    """Inverse of :func:`pack_dense_weights`: float32 +1/-1 weights (O, in_units)."""
    packed = np.asarray(packed)
    _check_ndim(packed, 2, "packed fully-connected")
    return unpack_signs(packed, in_units)
