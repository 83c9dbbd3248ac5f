"""``model_converter``: packs the 1-bit layers of an MXNet checkpoint.

::

    model_converter mnist-0001.params            # reads mnist-symbol.json beside it
    # -> binarized_mnist-symbol.json + binarized_mnist-0001.params

Exit status 0 on success, 1 on any error (printed as one ``error: ...`` line on stderr), 2 for
bad command-line usage. A BMXNet v1 file needs ``--from-bmxnet``; the tool says so.
"""
import argparse
import os
import sys

__all__ = ["main", "build_parser"]


def _shape(text):
    try:
        shape = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError("expected a shape like 1,3,224,224, got %r" % text)
    return shape


def _count(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0, got %r" % text)
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="model_converter",
        description="Packs the weights of the 1-bit QConvolution / QFullyConnected layers of an "
                    "MXNet checkpoint into 64-bit words (32x smaller) and writes "
                    "binarized_PREFIX-symbol.json + binarized_PREFIX-EPOCH.params. The "
                    "binarized model loads after `import bmxnet` and computes exactly what the "
                    "original computes.")
    p.add_argument("params", metavar="PARAMS",
                   help="PREFIX-EPOCH.params; PREFIX-symbol.json must be in the same folder")
    p.add_argument("--symbol", metavar="JSON", default=None,
                   help="the symbol file, when it is not PREFIX-symbol.json beside PARAMS")
    p.add_argument("--output-dir", metavar="DIR", default=None,
                   help="folder for the binarized files (default: next to PARAMS)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the per-layer plan and sizes; write nothing")
    p.add_argument("--verify", metavar="N", type=_count, default=0,
                   help="run N random inputs through the original and the converted model and "
                        "report the largest difference (must be 0; nothing is written otherwise)")
    p.add_argument("--data-shape", metavar="SHAPE", type=_shape, default=None,
                   help="input shape, batch first (e.g. 1,1,28,28): the converted model is "
                        "checked to bind and run with it before anything is written (and "
                        "--verify uses it); worked out from the first layer when omitted, "
                        "and asked for when that is not possible")
    p.add_argument("--from-bmxnet", action="store_true",
                   help="PARAMS is a BMXNet v1 model (binarized_* or unconverted); write it in "
                        "this project's binarized format")
    p.add_argument("--seed", type=int, default=0, help="seed of the --verify inputs")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no "MKLDNN is activated" log lines
    try:
        from . import convert
        report = convert.convert_checkpoint(args.params, output_dir=args.output_dir,
                                            dry_run=args.dry_run, verify=args.verify,
                                            data_shape=args.data_shape,
                                            from_bmxnet=args.from_bmxnet,
                                            symbol_path=args.symbol, seed=args.seed)
    except Exception as err:  # one line, no traceback
        from ..graph import ConversionError
        if isinstance(err, ConversionError):
            print("error: %s" % err, file=sys.stderr)
        else:
            print("error: unexpected %s: %s (please report this with the command line)"
                  % (type(err).__name__, err), file=sys.stderr)
        return 1
    print(report.format())
    if not args.dry_run:
        print("wrote %s and %s" % (report.files["symbol_out"], report.files["params_out"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
