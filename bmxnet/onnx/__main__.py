"""Command line: ``python -m bmxnet.onnx export ...`` and ``python -m bmxnet.onnx import ...``.

Export an MXNet checkpoint (float, k-bit or converted/packed) to ONNX::

    python -m bmxnet.onnx export mnist-symbol.json mnist-0001.params \\
        --input-shape 1,1,28,28 -o mnist.onnx

Import an ONNX binary network into packed bmxnet files (binarized_bnn-symbol.json,
binarized_bnn-0000.params)::

    python -m bmxnet.onnx import bnn.onnx --output-prefix binarized_bnn

Exit status 0 on success, 2 on a usage error, 1 when the input cannot be converted (the message
names the file, node and reason).
"""
import argparse
import sys


def _shape(text):
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError("expected positive integers separated by commas, like "
                                         "1,1,28,28; got %r" % text)
    return dims


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bmxnet.onnx",
                                description="ONNX export and import for bmxnet networks.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="MXNet checkpoint -> ONNX (standard operators only)")
    e.add_argument("symbol", help="PREFIX-symbol.json")
    e.add_argument("params", help="PREFIX-EPOCH.params")
    e.add_argument("--input-shape", type=_shape, action="append", required=True,
                   metavar="N,C,H,W", help="shape of the data input (repeat for several inputs)")
    e.add_argument("-o", "--output", required=True, help="the ONNX file to write")
    i = sub.add_parser("import", help="ONNX (binary) network -> packed bmxnet MXNet files")
    i.add_argument("model", help="the ONNX file")
    i.add_argument("--output-prefix", required=True,
                   help="writes PREFIX-symbol.json and PREFIX-%%04d.params (epoch)")
    i.add_argument("--epoch", type=int, default=0, help="epoch number in the params file name")
    i.add_argument("--no-convert", action="store_true",
                   help="keep float ±1 weights instead of packing them")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    import mxnet as mx
    import onnx

    from . import OnnxImportError, export_model, import_model
    from ..graph import error_line
    try:
        if args.command == "export":
            shapes = args.input_shape[0] if len(args.input_shape) == 1 else args.input_shape
            path = export_model(args.symbol, args.params, shapes, args.output)
            model = onnx.load(path)
            ops = sorted({n.op_type for n in model.graph.node})
            print("wrote %s: %d nodes, opset %d, operators: %s"
                  % (path, len(model.graph.node), model.opset_import[0].version, ", ".join(ops)))
        else:
            _, _, _, report = import_model(args.model, args.output_prefix, epoch=args.epoch,
                                           convert=not args.no_convert)
            for layer in report["binary_layers"]:
                print("binary %-16s %-28s <- %s (scaling %s, sign %s)"
                      % (layer["type"], layer["layer"], layer["node"], layer["scaling_mode"],
                         layer["sign"]))
            print("%d binary layer(s), %d float conv/dense layer(s)"
                  % (len(report["binary_layers"]), len(report["float_layers"])))
            if report["plain_sign_layers"]:
                print("note: %d binary layer(s) are fed by ONNX Sign (Sign(0) = 0); bmxnet uses "
                      "sign(0) = +1, so inputs that are exactly 0.0 count as +1"
                      % len(report["plain_sign_layers"]))
            if "converter" in report:
                print(report["converter"].format())
            print("wrote " + ", ".join(report["files"]))
    except (OnnxImportError, ValueError, TypeError, OSError, mx.base.MXNetError) as err:
        print("error: %s" % error_line(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
