"""Data sets from local files in their standard formats (nothing is ever downloaded).

========== ====================================================================================
name       files under ``data_dir``
========== ====================================================================================
digits     none: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes),
           split 80/20 with a fixed seed
mnist      ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
           ``t10k-labels-idx1-ubyte`` (each may be ``.gz``) -- the idx files of LeCun's site
cifar10    ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` python pickles (also inside
           ``cifar-10-batches-py/``)
imagenet   ``train/<class>/*.jpg`` and ``val/<class>/*.jpg`` (gluon ImageFolderDataset), or
           ``train.rec`` + ``val.rec`` (mx.io.ImageRecordIter, with ``.idx`` files if present)
========== ====================================================================================

:func:`get_dataset` returns a :class:`DataSet` whose ``train`` / ``val`` are re-iterable batch
iterators yielding ``(data, label)`` NDArrays.
"""
import glob
import gzip
import os
import pickle
import struct

import mxnet as mx
import numpy as np

__all__ = ["DataSet", "ArrayIterator", "get_dataset", "read_idx", "load_digits", "load_mnist",
           "load_cifar10", "DATASETS"]

DATASETS = ("digits", "mnist", "cifar10", "imagenet")

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class DataError(ValueError):
    """A data set is missing or malformed (the message names the file and the fix)."""


class DataSet:
    """``train`` and ``val`` iterators plus ``num_classes``, ``input_shape`` (C, H, W),
    ``num_train`` / ``num_val`` (None when unknown) and ``name``."""

    def __init__(self, name, train, val, num_classes, input_shape, num_train=None, num_val=None):
        self.name, self.train, self.val = name, train, val
        self.num_classes, self.input_shape = num_classes, tuple(input_shape)
        self.num_train, self.num_val = num_train, num_val

    def __repr__(self):
        return "DataSet(%s: %s train, %s val, %d classes, input %s)" % (
            self.name, self.num_train, self.num_val, self.num_classes, self.input_shape)


class ArrayIterator:
    """Batches of in-memory arrays; re-iterable (each ``iter()`` is one epoch).

    Parameters
    ----------
    X : ndarray (N, C, H, W) float32, already normalized
    y : ndarray (N,)
    batch_size : int
    shuffle : bool
    augment : callable (ndarray batch, RandomState) -> ndarray, optional
    last_batch : {'keep', 'discard'}
    seed : int
    """

    def __init__(self, X, y, batch_size, shuffle=False, augment=None, last_batch="keep", seed=0):
        if len(X) != len(y):
            raise DataError("data and labels differ in length: %d vs %d" % (len(X), len(y)))
        self.X, self.y = X, y.astype(np.float32)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.last_batch = last_batch
        self._rng = np.random.RandomState(seed)

    def __len__(self):
        n = len(self.X) // self.batch_size
        if self.last_batch == "keep" and len(self.X) % self.batch_size:
            n += 1
        return n

    def __iter__(self):
        idx = self._rng.permutation(len(self.X)) if self.shuffle else np.arange(len(self.X))
        for b in range(len(self)):
            sel = idx[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.X[sel]
            if self.augment is not None:
                xb = self.augment(xb, self._rng)
            yield mx.nd.array(xb), mx.nd.array(self.y[sel])


def crop_flip(pad=4):
    """Random crop after zero padding by ``pad`` and random horizontal flip (CIFAR's)."""
    def augment(xb, rng):
        n, c, h, w = xb.shape
        padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), xb.dtype)
        padded[:, :, pad:pad + h, pad:pad + w] = xb
        out = np.empty_like(xb)
        for i in range(n):
            dy, dx = rng.randint(0, 2 * pad + 1, 2)
            img = padded[i, :, dy:dy + h, dx:dx + w]
            out[i] = img[:, :, ::-1] if rng.rand() < 0.5 else img
        return out
    return augment


# ------------------------------------------------------------------------------------------------
def load_digits(seed=0, test_fraction=0.2):
    """scikit-learn's bundled 8x8 digits as ((Xtr, ytr), (Xte, yte)), X (N, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits as _load
    d = _load()
    X = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    idx = np.random.RandomState(seed).permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    te, tr = idx[:n_test], idx[n_test:]
    return (X[tr], y[tr]), (X[te], y[te])


def _open(path):
    if os.path.exists(path):
        return open(path, "rb")
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    raise DataError("missing file %s(.gz); put the MNIST idx files in that folder" % path)


def read_idx(path):
    """An idx file (MNIST's format) as a numpy array; ``path`` may lack its ``.gz``."""
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError("%s is not an idx file (bad magic number)" % path)
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError("%s: unknown idx data type 0x%02x" % (path, raw[2]))
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError("%s: header says %s values, file holds %d" % (path, shape, data.size))
    return data.reshape(shape)


def load_mnist(data_dir):
    """((Xtr, ytr), (Xte, yte)) from MNIST idx files, X (N, 1, 28, 28) in [0, 1]."""
    out = []
    for split in ("train", "t10k"):
        X = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte" % split))
        y = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte" % split))
        if X.ndim != 3 or len(X) != len(y):
            raise DataError("%s: images %s and labels %s do not match" % (split, X.shape, y.shape))
        out.append(((X.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)))
    return tuple(out)


def _unpickle(path):
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise DataError("%s is not a CIFAR-10 python batch (no 'data'/'labels')" % path)
    return np.asarray(data, np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, np.int64)


def load_cifar10(data_dir):
    """((Xtr, ytr), (Xte, yte)) from the python batches, X (N, 3, 32, 32) uint8."""
    root = data_dir
    if not os.path.exists(os.path.join(root, "test_batch")) and \
            os.path.exists(os.path.join(root, "cifar-10-batches-py", "test_batch")):
        root = os.path.join(root, "cifar-10-batches-py")
    train = sorted(glob.glob(os.path.join(root, "data_batch_*")))
    test = os.path.join(root, "test_batch")
    if not train or not os.path.exists(test):
        raise DataError("no CIFAR-10 python batches in %s: expected data_batch_1..5 and "
                        "test_batch (the cifar-10-python.tar.gz archive, extracted)" % data_dir)
    parts = [_unpickle(p) for p in train]
    Xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    return (Xtr, ytr), _unpickle(test)


def _normalize(X, mean, std):
    X = X.astype(np.float32) / 255.0
    return (X - mean[None, :, None, None]) / std[None, :, None, None]


def _subset(X, y, n):
    return (X, y) if not n or n >= len(X) else (X[:n], y[:n])


# ------------------------------------------------------------------------------------------------
class _RecIterator:
    """mx.io.ImageRecordIter as an iterator of (data, label). A new ImageRecordIter is made for
    every epoch: after a padded last batch, reset() of the same one starts the next epoch
    wherever the padding left off, so epochs would differ in length and content."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._epoch = 0

    def __iter__(self):
        self._epoch += 1
        it = mx.io.ImageRecordIter(seed=self._epoch, **self._kwargs)
        for batch in it:
            n = batch.data[0].shape[0] - batch.pad
            yield batch.data[0][:n], batch.label[0][:n]


def _imagenet(data_dir, batch_size, image_size, num_workers):
    rec_train = os.path.join(data_dir, "train.rec")
    if os.path.exists(rec_train):
        its = []
        for split, train in (("train", True), ("val", False)):
            rec = os.path.join(data_dir, split + ".rec")
            if not os.path.exists(rec):
                raise DataError("missing %s (give train.rec and val.rec)" % rec)
            idx = os.path.join(data_dir, split + ".idx")
            kw = dict(path_imgrec=rec, data_shape=(3, image_size, image_size),
                      batch_size=batch_size, shuffle=train, rand_crop=train, rand_mirror=train,
                      resize=int(image_size * 256 / 224), preprocess_threads=num_workers or 1,
                      mean_r=123.68, mean_g=116.779, mean_b=103.939,
                      std_r=58.393, std_g=57.12, std_b=57.375,
                      round_batch=True)  # round_batch=False leaves pad=0 and garbage rows
            if os.path.exists(idx):
                kw["path_imgidx"] = idx
            its.append(_RecIterator(**kw))
        return its[0], its[1], None, None, None
    from mxnet.gluon.data import DataLoader
    from mxnet.gluon.data.vision import ImageFolderDataset, transforms
    dirs = [os.path.join(data_dir, s) for s in ("train", "val")]
    for d in dirs:
        if not os.path.isdir(d):
            raise DataError("no ImageNet data in %s: expected train/ and val/ folders of "
                            "class subfolders, or train.rec and val.rec" % data_dir)
    norm = transforms.Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist())
    t_train = transforms.Compose([transforms.RandomResizedCrop(image_size),
                                  transforms.RandomFlipLeftRight(), transforms.ToTensor(), norm])
    t_val = transforms.Compose([transforms.Resize(int(image_size * 256 / 224)),
                                transforms.CenterCrop(image_size), transforms.ToTensor(), norm])
    train = ImageFolderDataset(dirs[0])
    val = ImageFolderDataset(dirs[1])
    if train.synsets != val.synsets:
        raise DataError("train/ and val/ in %s have different class folders" % data_dir)
    lt = DataLoader(train.transform_first(t_train), batch_size, shuffle=True,
                    num_workers=num_workers)
    lv = DataLoader(val.transform_first(t_val), batch_size, shuffle=False,
                    num_workers=num_workers)
    return lt, lv, len(train.synsets), len(train), len(val)


def get_dataset(name, data_dir=None, batch_size=64, *, num_train=None, num_val=None, seed=0,
                augment=True, image_size=224, num_workers=0):
    """A :class:`DataSet` by name (see the module docstring for the files each one needs).

    Parameters
    ----------
    name : {'digits', 'mnist', 'cifar10', 'imagenet'}
    data_dir : str
        Folder with the files (unused for digits).
    batch_size : int
    num_train, num_val : int, optional
        Use only the first examples (for quick runs and tests).
    seed : int
        Shuffling / augmentation seed.
    augment : bool
        CIFAR-10: random crop (pad 4) and flip; ImageNet: random resized crop and flip.
    image_size : int
        ImageNet crop size.
    """
    if name not in DATASETS:
        raise DataError("unknown dataset %r; choose one of %s" % (name, ", ".join(DATASETS)))
    if name != "digits" and not data_dir:
        raise DataError("dataset %r needs --data-dir (the folder with its files)" % name)
    if name != "digits" and not os.path.isdir(data_dir):
        raise DataError("data folder %s does not exist" % data_dir)
    if name == "imagenet":
        train, val, classes, ntr, nva = _imagenet(data_dir, batch_size, image_size, num_workers)
        return DataSet(name, train, val, classes or 1000, (3, image_size, image_size), ntr, nva)
    if name == "digits":
        (Xtr, ytr), (Xte, yte) = load_digits(seed=0)
        classes, aug = 10, None
    elif name == "mnist":
        (Xtr, ytr), (Xte, yte) = load_mnist(data_dir)
        classes, aug = 10, None
    else:
        (Xtr, ytr), (Xte, yte) = load_cifar10(data_dir)
        Xtr, Xte = _normalize(Xtr, CIFAR_MEAN, CIFAR_STD), _normalize(Xte, CIFAR_MEAN, CIFAR_STD)
        classes, aug = 10, (crop_flip(4) if augment else None)
    Xtr, ytr = _subset(Xtr, ytr, num_train)
    Xte, yte = _subset(Xte, yte, num_val)
    train = ArrayIterator(Xtr, ytr, batch_size, shuffle=True, augment=aug, seed=seed)
    val = ArrayIterator(Xte, yte, batch_size, shuffle=False)
    return DataSet(name, train, val, classes, Xtr.shape[1:], len(Xtr), len(Xte))
