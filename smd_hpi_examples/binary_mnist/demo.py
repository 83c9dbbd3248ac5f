"""The main job (``make demo``): train the binary LeNet, convert it, run the packed model.

1. ``binary_mnist.py``: trains on scikit-learn's digits (or ``--data-dir`` MNIST) and saves
   ``mnist-symbol.json`` / ``mnist-0001.params``;
2. the model converter packs its 1-bit layers into ``binarized_mnist-*``;
3. the binarized files are loaded like any checkpoint (``gluon.SymbolBlock.imports``) and
   evaluated on the same test images.

Prints the accuracy of both models, whether every prediction agrees, and the file sizes.
Arguments are those of ``binary_mnist.py``.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no oneDNN log lines from --verify

import binary_mnist  # noqa: E402  (the training example beside this file)

import bmxnet.converter  # noqa: E402


def _size(path):
    return os.path.getsize(path) / 1024.0


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

    print("\n== result")
    print("| model | test accuracy | params file |")
    print("| --- | --- | --- |")
    print("| trained (float latent weights) | %.4f | %s: %.1f KiB |"
          % (trained["test_accuracy"], os.path.basename(files["params_in"]),
             _size(files["params_in"])))
    print("| binarized (packed 1-bit weights) | %.4f | %s: %.1f KiB |"
          % (packed_acc, os.path.basename(files["params_out"]), _size(files["params_out"])))
    print("1-bit weights %.1fx smaller; params file %.1fx smaller; predictions identical on all "
          "%d test images: %s; max |logit difference| = %.1e"
          % (report.ratio, _size(files["params_in"]) / _size(files["params_out"]),
             len(trained["y_test"]), same, max_diff))
    if not same or packed_acc != trained["test_accuracy"]:
        raise SystemExit("the binarized model disagrees with the trained one")
    print("test_accuracy=%.4f binarized_test_accuracy=%.4f" % (trained["test_accuracy"],
                                                              packed_acc))


if __name__ == "__main__":
    main()
