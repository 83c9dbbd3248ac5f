"""Data for the binary MNIST example: an IDX file reader/writer and the two data sources.

* ``load_digits_28x28`` -- scikit-learn's bundled 8x8 handwritten digits (no download), scaled to
  [0, 1], bilinearly upsampled to 20x20 and centred in a 28x28 frame with a 4-pixel zero border,
  the way MNIST centres its 20x20 digits. Split 80/20, stratified, with a fixed seed.
* ``load_mnist_dir`` -- the four MNIST IDX files (optionally ``.gz``) from a local folder.

Both return float32 images of shape (N, 1, 28, 28) in [0, 1] and int32 labels of shape (N,).

The IDX format (http://yann.lecun.com/exdb/mnist/): two zero bytes, one type byte, one byte with
the number of dimensions d, then d big-endian uint32 sizes, then the data, big-endian, C order.
"""
import gzip
import os
import struct
import tempfile

import numpy as np

__all__ = ["IdxFormatError", "read_idx", "write_idx", "load_mnist_dir", "load_digits_28x28",
           "MNIST_FILES"]

# type byte -> numpy dtype (big-endian as stored)
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_TYPES.items()}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class IdxFormatError(ValueError):
    """A file is not a valid IDX file (or not the IDX file that was expected)."""


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """Reads an IDX file (plain or ``.gz``) into a numpy array in native byte order.

    Raises ``FileNotFoundError`` if the file is missing and ``IdxFormatError`` if its header or
    size is wrong.
    """
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise IdxFormatError("%s: cannot be read as %s (%s); replace it with an intact copy"
                             % (path, "gzip" if path.endswith(".gz") else "a file", e)) from e
    if len(raw) < 4:
        raise IdxFormatError("%s: %d bytes is too short for an IDX header; the file is truncated"
                             % (path, len(raw)))
    zero1, zero2, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or code not in _IDX_TYPES:
        raise IdxFormatError(
            "%s: bad IDX magic number 0x%s (expected 00 00 <type in 08,09,0B,0C,0D,0E> <ndim>); "
            "is it an MNIST idx file (compressed files must end in .gz)?"
            % (path, raw[:4].hex()))
    if ndim < 1:
        raise IdxFormatError("%s: IDX header says 0 dimensions" % path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError("%s: truncated IDX header (%d dimensions need %d bytes, file has %d)"
                             % (path, ndim, header, len(raw)))
    shape = struct.unpack(">%dI" % ndim, raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxFormatError("%s: header shape %s needs %d data bytes but the file has %d; the "
                             "file is truncated or corrupt" % (path, shape, expected,
                                                               len(raw) - header))
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Writes ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``).

    The file is written to a temporary name and renamed, so it is never left half-written.
    """
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _IDX_CODES:
        raise ValueError("write_idx: dtype %s has no IDX type code; use uint8, int8, int16, "
                         "int32, float32 or float64" % array.dtype)
    if array.ndim < 1 or array.ndim > 255:
        raise ValueError("write_idx: need 1..255 dimensions, got %d" % array.ndim)
    code = _IDX_CODES[key]
    payload = (bytes([0, 0, code, array.ndim]) + struct.pack(">%dI" % array.ndim, *array.shape)
               + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes())
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".idx")
    try:
        with os.fdopen(fd, "wb") as f:
            if path.endswith(".gz"):
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                    gz.write(payload)
            else:
                f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def load_mnist_dir(data_dir):
    """Loads MNIST from the four IDX files in ``data_dir`` (each plain or ``.gz``).

    Returns ``(x_train, y_train, x_test, y_test)``: float32 (N, 1, 28, 28) in [0, 1], int32 (N,).
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError("--data-dir %s is not a folder; point it at the folder holding "
                                "the MNIST idx files (%s)"
                                % (data_dir, ", ".join(MNIST_FILES.values())))
    paths = {key: _find(data_dir, name) for key, name in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(
            "MNIST files missing in %s: %s (each may also end in .gz); put the four MNIST idx "
            "files there, or leave out --data-dir to train on scikit-learn's bundled digits"
            % (data_dir, ", ".join(missing)))
    arrays = {key: read_idx(path) for key, path in paths.items()}
    out = []
    for split in ("train", "test"):
        img_path, lab_path = paths[split + "_images"], paths[split + "_labels"]
        images, labels = arrays[split + "_images"], arrays[split + "_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise IdxFormatError("%s: expected uint8 images of shape (N, rows, cols), got %s %s"
                                 % (img_path, images.dtype, images.shape))
        if images.shape[1:] != (28, 28):
            raise IdxFormatError("%s: expected 28x28 images, got %dx%d"
                                 % (img_path, images.shape[1], images.shape[2]))
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise IdxFormatError("%s: expected uint8 labels of shape (N,), got %s %s"
                                 % (lab_path, labels.dtype, labels.shape))
        if labels.shape[0] != images.shape[0]:
            raise IdxFormatError("%s has %d labels but %s has %d images"
                                 % (lab_path, labels.shape[0], img_path, images.shape[0]))
        if labels.size and labels.max() > 9:
            raise IdxFormatError("%s: labels must be 0..9, found %d" % (lab_path, labels.max()))
        out.append((images.astype(np.float32)[:, None] / 255.0).astype(np.float32))
        out.append(labels.astype(np.int32))
    return tuple(out)


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) interpolation matrix, pixel centres aligned (like cv2/PIL bilinear)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for i in range(n_out):
        src = min(max((i + 0.5) * scale - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        m[i, lo] += 1.0 - frac
        m[i, hi] += frac
    return m


def digits_to_28x28(images8, inner=20):
    """(N, 8, 8) values in [0, 16] -> (N, 1, 28, 28) float32 in [0, 1]: bilinear upsampling to
    ``inner`` x ``inner``, centred in 28x28 with a zero border (as MNIST centres 20x20 digits)."""
    images8 = np.asarray(images8, dtype=np.float64) / 16.0
    r = _bilinear_matrix(images8.shape[1], inner)
    c = _bilinear_matrix(images8.shape[2], inner)
    up = np.einsum("ij,njk,lk->nil", r, images8, c)
    out = np.zeros((images8.shape[0], 1, 28, 28), dtype=np.float32)
    off = (28 - inner) // 2
    out[:, 0, off:off + inner, off:off + inner] = np.clip(up, 0.0, 1.0)
    return out


def load_digits_28x28(split_seed=0, test_fraction=0.2):
    """scikit-learn's 1797 bundled 8x8 digits as 28x28 MNIST-like images, split 80/20
    stratified by class with ``split_seed``. Returns ``(x_train, y_train, x_test, y_test)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits_to_28x28(digits.images)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    return x_train, y_train, x_test, y_test
