"""The main job (``make demo``): train the binary LeNet, convert it, run the packed model.

1. ``binary_mnist.py``: trains on scikit-learn's digits (or ``--data-dir`` MNIST) and saves
   ``mnist-symbol.json`` / ``mnist-0001.params``;
2. the model converter packs its 1-bit layers into ``binarized_mnist-*``;
3. the binarized files are loaded like any checkpoint (``gluon.SymbolBlock.imports``) and
   evaluated on the same test images;
4. the same binarized files run in the standalone runtime (``bmxnet.runtime``, no MXNet), one
   image at a time as on a phone.

Prints the accuracy of the three, whether every prediction agrees, and the file sizes.
Arguments are those of ``binary_mnist.py``.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no oneDNN log lines from --verify

import binary_mnist  # noqa: E402  (the training example beside this file)

import bmxnet.converter  # noqa: E402
import bmxnet.runtime  # noqa: E402


def _size(path):
    return os.path.getsize(path) / 1024.0


def run_runtime(symbol_file, params_file, x):
    """Logits of the standalone runtime on ``x``, image by image; seconds per image."""
    model = bmxnet.runtime.Model(symbol_file, params_file,
                                 input_shapes={"data": (1,) + x.shape[1:]}, num_threads=1)
    tic = time.perf_counter()
    logits = np.concatenate([model.run(x[i:i + 1]) for i in range(len(x))])
    return logits, (time.perf_counter() - tic) / max(len(x), 1)


def main(argv=None):
    trained = binary_mnist.main(argv)
    print("\n== model_converter %s" % trained["params_file"])
    report = bmxnet.converter.convert_checkpoint(trained["params_file"], verify=2)
    print(report.format())

    files = report.files
    packed = binary_mnist.load_checkpoint(files["symbol_out"], files["params_out"])
    packed_logits = binary_mnist.predict(packed, trained["x_test"])
    packed_acc = binary_mnist.accuracy(packed_logits, trained["y_test"])
    same = np.array_equal(packed_logits.argmax(1), trained["logits"].argmax(1))
    max_diff = float(np.abs(packed_logits - trained["logits"]).max())
    runtime_logits, seconds = run_runtime(files["symbol_out"], files["params_out"],
                                          trained["x_test"])
    runtime_acc = binary_mnist.accuracy(runtime_logits, trained["y_test"])
    runtime_same = np.array_equal(runtime_logits.argmax(1), packed_logits.argmax(1))

    print("\n== result")
    print("| model | test accuracy | params file |")
    print("| --- | --- | --- |")
    print("| trained (float latent weights) | %.4f | %s: %.1f KiB |"
          % (trained["test_accuracy"], os.path.basename(files["params_in"]),
             _size(files["params_in"])))
    print("| binarized (packed 1-bit weights) | %.4f | %s: %.1f KiB |"
          % (packed_acc, os.path.basename(files["params_out"]), _size(files["params_out"])))
    print("| binarized, standalone runtime (bmxnet.runtime, no MXNet) | %.4f | the same file |"
          % runtime_acc)
    print("1-bit weights %.1fx smaller; params file %.1fx smaller; predictions identical on all "
          "%d test images: %s; max |logit difference| = %.1e"
          % (report.ratio, _size(files["params_in"]) / _size(files["params_out"]),
             len(trained["y_test"]), same, max_diff))
    print("runtime: predictions identical to MXNet's on all %d test images: %s; "
          "max |logit difference| = %.1e; %.2f ms per image (1 thread)"
          % (len(trained["y_test"]), runtime_same,
             float(np.abs(runtime_logits - packed_logits).max()),
             seconds * 1e3))
    if not same or packed_acc != trained["test_accuracy"]:
        raise SystemExit("the binarized model disagrees with the trained one")
    if not runtime_same:
        raise SystemExit("the standalone runtime disagrees with MXNet on the binarized files")
    print("test_accuracy=%.4f binarized_test_accuracy=%.4f runtime_test_accuracy=%.4f"
          % (trained["test_accuracy"], packed_acc, runtime_acc))


if __name__ == "__main__":
    main()
