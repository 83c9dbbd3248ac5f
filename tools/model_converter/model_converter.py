#!/usr/bin/env python3
"""model_converter: packs the 1-bit layers of an MXNet checkpoint (see README.md here).

Thin wrapper around ``bmxnet.converter.cli.main``; works from a source checkout without
``pip install`` (the repository root is put on ``sys.path``).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no "MKLDNN is activated" log lines

try:
    from bmxnet.converter.cli import main  # noqa: E402
except ImportError as err:  # mxnet or the operator library missing: one line, no traceback
    sys.exit("error: %s (run model_converter with the Python that has mxnet and bmxnet)" % err)

if __name__ == "__main__":
    sys.exit(main())
