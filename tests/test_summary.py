"""summary(): counts against hand-computed values (binary LeNet, Bi-Real Net-18, a small symbolic
network, plain and converted) and a snapshot of the printed table."""
import mxnet as mx
import numpy as np
import pytest

from bmxnet import model_zoo
from bmxnet.gluon import QConv2D, QDense
from bmxnet.quantizers import DoReFa
from bmxnet.summary import summary

SNAPSHOT = """\
BinaryLeNet summary, input (1, 1, 28, 28)
+------------------+------------+---------+----------------+---------+----------+--------------+------------+-------------+
| Layer            | Type       | In bits | Output shape   | # 1-bit | # 32-bit | Memory (KiB) | 1-bit MACs | 32-bit MACs |
+------------------+------------+---------+----------------+---------+----------+--------------+------------+-------------+
| lenet_conv0      | Conv2D     |       - | (1, 8, 24, 24) |       0 |      208 |         0.81 |          0 |     115,200 |
| lenet_tanh0      | Activation |       - | (1, 8, 24, 24) |       0 |        0 |         0.00 |          0 |           0 |
| lenet_pool0      | MaxPool2D  |       - | (1, 8, 12, 12) |       0 |        0 |         0.00 |          0 |           0 |
| lenet_batchnorm0 | BatchNorm  |       - | (1, 8, 12, 12) |       0 |       32 |         0.12 |          0 |           0 |
| lenet_qconv0     | QConv2D    |       1 | (1, 16, 8, 8)  |   3,200 |        0 |         0.39 |    204,800 |           0 |
| lenet_batchnorm1 | BatchNorm  |       - | (1, 16, 8, 8)  |       0 |       64 |         0.25 |          0 |           0 |
| lenet_tanh1      | Activation |       - | (1, 16, 8, 8)  |       0 |        0 |         0.00 |          0 |           0 |
| lenet_pool1      | MaxPool2D  |       - | (1, 16, 4, 4)  |       0 |        0 |         0.00 |          0 |           0 |
| lenet_flatten0   | Flatten    |       - | (1, 256)       |       0 |        0 |         0.00 |          0 |           0 |
| lenet_qdense0    | QDense     |       1 | (1, 100)       |  25,600 |        0 |         3.12 |     25,600 |           0 |
| lenet_batchnorm2 | BatchNorm  |       - | (1, 100)       |       0 |      400 |         1.56 |          0 |           0 |
| lenet_tanh2      | Activation |       - | (1, 100)       |       0 |        0 |         0.00 |          0 |           0 |
| lenet_dense0     | Dense      |       - | (1, 10)        |       0 |    1,010 |         3.95 |          0 |       1,000 |
+------------------+------------+---------+----------------+---------+----------+--------------+------------+-------------+
| Total            |            |         |                |  28,800 |    1,714 |        10.21 |    230,400 |     116,200 |
+------------------+------------+---------+----------------+---------+----------+--------------+------------+-------------+
Total params         30,514
1-bit params         28,800
32-bit params        1,714
Model size           10.21 KiB
Float-32 equivalent  119.20 KiB
Compression ratio    11.67x
Binary MACs          230,400 (66.47 % of all MACs)
Float MACs           116,200"""


def test_snapshot_of_the_printed_table():
    printed = []
    net = model_zoo.BinaryLeNet(prefix="lenet_", hidden=100, channels=(8, 16))
    s = summary(net, (1, 1, 28, 28), print_fn=printed.append)
    assert printed == [s.table] and str(s) == s.table
    assert s.table == SNAPSHOT, "\n" + s.table


def test_binary_lenet_hand_computed():
    """MNIST 28x28: conv5x5(64) float, conv5x5(64) binary, dense(1000) binary, dense(10) float."""
    s = summary(model_zoo.get_model("binary_lenet"), (1, 1, 28, 28), print_fn=None)
    t = s.totals
    conv0 = 1 * 64 * 5 * 5 + 64           # float, with bias
    qconv = 64 * 64 * 5 * 5               # binary, no bias (a BatchNorm follows)
    qdense = 64 * 4 * 4 * 1000            # 28 -> 24 -> 12 -> 8 -> 4
    dense = 1000 * 10 + 10
    bn = 4 * (64 + 64 + 1000)             # gamma, beta, running mean, running var
    assert t["params_1bit"] == qconv + qdense == 1126400
    assert t["params_32bit"] == conv0 + dense + bn == 16186
    assert t["memory_bytes"] == (qconv + qdense) / 8 + 4 * (conv0 + dense + bn)
    assert t["float32_bytes"] == 4 * (qconv + qdense + conv0 + dense + bn)
    assert t["binary_macs"] == 64 * 8 * 8 * (64 * 25) + 1024 * 1000
    assert t["float_macs"] == 64 * 24 * 24 * 25 + 1000 * 10
    assert abs(t["compression"] - t["float32_bytes"] / t["memory_bytes"]) < 1e-12
    rows = {r.type: r for r in s.layers if r.type in ("QConv2D", "QDense")}
    assert rows["QConv2D"].input_bits == 1 and rows["QConv2D"].output_shape == (1, 64, 8, 8)


def test_birealnet18_hand_computed():
    """Bi-Real Net-18 at 224x224: 16 binary 3x3 convolutions; the paper's 1.68e9 BOPs."""
    s = summary(model_zoo.get_model("birealnet18"), (1, 3, 224, 224), print_fn=None)
    t = s.totals
    widths = [64, 128, 256, 512]
    binary = sum(4 * c * c * 9 for c in widths) - sum(c * c // 2 * 9 for c in widths[1:])
    assert binary == 10985472 and t["params_1bit"] == binary
    down = sum(c // 2 * c for c in widths[1:])          # real 1x1 shortcut convolutions
    bn = 4 * (64 + 4 * sum(widths) + sum(widths[1:]))    # stem, one per block, shortcuts
    assert t["params_32bit"] == 3 * 64 * 49 + down + bn + 512 * 1000 + 1000 == 713640
    sizes = [56, 28, 14, 7]
    bmacs = sum(4 * s_ * s_ * c * c * 9 for s_, c in zip(sizes, widths)) - \
        sum(s_ * s_ * c * c // 2 * 9 for s_, c in zip(sizes[1:], widths[1:]))
    assert t["binary_macs"] == bmacs == 1676279808
    fmacs = 112 * 112 * 64 * 3 * 49 + sum(s_ * s_ * c * c // 2 for s_, c in
                                          zip(sizes[1:], widths[1:])) + 512 * 1000
    assert t["float_macs"] == fmacs == 137793536
    assert 0.92 < t["binary_mac_fraction"] < 0.93


def test_kbit_and_float_input_layers_count_as_float_macs():
    net = mx.gluon.nn.HybridSequential(prefix="k_")
    with net.name_scope():
        net.add(QConv2D(4, 3, in_channels=2, use_bias=False, input_quantizer=None),
                QDense(3, in_units=4 * 4 * 4, kernel_quantizer=DoReFa(2, "weights")))
    s = summary(net, (1, 2, 6, 6), print_fn=None)
    assert s.totals["binary_macs"] == 0
    assert s.totals["float_macs"] == 4 * 16 * 18 + 3 * 64
    assert s.totals["params_1bit"] == 72 and s.totals["params_kbit"] == 192
    assert s.totals["memory_bytes"] == (72 + 2 * 192) / 8 + 4 * 3
    assert "# k-bit" in s.table


def test_uninitialized_large_model_is_fast_and_allocates_nothing():
    net = model_zoo.get_model("binary_alexnet")
    s = summary(net, (1, 3, 224, 224), print_fn=None)
    assert s.totals["params"] > 6e7
    with pytest.raises(RuntimeError):  # still not initialized: summary computed nothing
        net.collect_params()[net.output[0].weight.name].data()


# ---- symbolic networks (gluon.SymbolBlock): counted from the graph, node by node ----------------
def _small_symbol():
    d = mx.sym.var("data")
    x = mx.sym.Convolution(d, num_filter=8, kernel=(3, 3), name="c0")
    x = mx.sym.BatchNorm(x, name="bn0")
    x = mx.sym.QConvolution(x, num_filter=16, kernel=(3, 3), pad=(1, 1), no_bias=True,
                            name="qc", act_bit=1, weight_bit=1)
    x = mx.sym.QConvolution(x, num_filter=16, kernel=(3, 3), num_group=2, no_bias=True,
                            name="qk", act_bit=2, weight_bit=2)
    x = mx.sym.QFullyConnected(x, num_hidden=20, no_bias=True, name="qf")
    return mx.sym.FullyConnected(x, num_hidden=10, name="fc")


# Hand count for input (1, 3, 10, 10): c0 3x3 valid -> 8x8x8, qc pad 1 -> 16x8x8,
# qk 3x3 groups of 8 channels -> 16x6x6, qf 576 -> 20, fc 20 -> 10.
HAND = {  # name: (type, input bits, output shape, 1-bit, 32-bit, k-bit, memory bits, bMACs, fMACs)
    "c0": ("Convolution", None, (1, 8, 8, 8), 0, 8 * 3 * 9 + 8, 0, 32 * 224, 0, 8 * 64 * 27),
    "bn0": ("BatchNorm", None, (1, 8, 8, 8), 0, 4 * 8, 0, 32 * 32, 0, 0),
    "qc": ("QConvolution", 1, (1, 16, 8, 8), 16 * 8 * 9, 0, 0, 16 * 8 * 9, 16 * 64 * 72, 0),
    "qk": ("QConvolution", 2, (1, 16, 6, 6), 0, 0, 16 * 8 * 9, 2 * 16 * 8 * 9, 0, 16 * 36 * 72),
    "qf": ("QFullyConnected", 1, (1, 20), 20 * 576, 0, 0, 20 * 576, 20 * 576, 0),
    "fc": ("FullyConnected", None, (1, 10), 0, 10 * 20 + 10, 0, 32 * 210, 0, 10 * 20),
}


def test_symbolblock_counted_from_its_graph():
    net = mx.gluon.SymbolBlock(_small_symbol(), mx.sym.var("data"))
    s = summary(net, (1, 3, 10, 10), print_fn=None)
    assert {r.name: tuple(r[1:]) for r in s.layers} == HAND
    assert s.totals["binary_macs"] == 16 * 64 * 72 + 20 * 576 == 85248
    assert s.totals["float_macs"] == 8 * 64 * 27 + 16 * 36 * 72 + 200


def test_converted_symbolblock_counts_packed_weights_as_1_bit():
    """The model converter's packed words stand for the same 1-bit weights; their memory is
    the words: qc (16, 3, 3, 1) and qf (20, 9) int64 (576 inputs -> 9 words)."""
    from bmxnet.converter import convert_model
    sym = _small_symbol()
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, 10, 10))
    rng = np.random.RandomState(0)
    args = {n: mx.nd.array(rng.uniform(-1, 1, s)) for n, s in
            zip(sym.list_arguments(), arg_shapes) if n != "data"}
    aux = {n: mx.nd.ones(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    sym2, args2, aux2, _ = convert_model(sym, args, aux)
    net = mx.gluon.SymbolBlock(sym2, mx.sym.var("data"))
    s = summary(net, (1, 3, 10, 10), print_fn=None)
    rows = {r.name: r for r in s.layers}
    assert rows["qc"].params_1bit == 16 * 8 * 9 and rows["qc"].memory_bits == 16 * 9 * 64
    assert rows["qf"].params_1bit == 20 * 576 and rows["qf"].memory_bits == 20 * 9 * 64
    assert s.totals["binary_macs"] == 85248
    assert s.totals["params_1bit"] == 16 * 8 * 9 + 20 * 576


def test_exported_binary_lenet_imports_with_the_same_counts(tmp_path):
    """Binary LeNet, exported and loaded back as a SymbolBlock: the hand-computed numbers of
    test_binary_lenet_hand_computed."""
    net = model_zoo.get_model("binary_lenet")
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.export(str(tmp_path / "lenet"))
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / "lenet-symbol.json"), ["data"],
                                          str(tmp_path / "lenet-0000.params"))
    t = summary(loaded, (1, 1, 28, 28), print_fn=None).totals
    assert t["binary_macs"] == 64 * 8 * 8 * (64 * 25) + 1024 * 1000
    assert t["float_macs"] == 64 * 24 * 24 * 25 + 1000 * 10
    assert t["params_1bit"] == 64 * 64 * 25 + 64 * 16 * 1000
    assert t["params_32bit"] == (64 * 25 + 64) + (1000 * 10 + 10) + 4 * (64 + 64 + 1000)


def test_symbolblock_inside_a_gluon_net_and_blocks_calling_operators_directly():
    class Direct(mx.gluon.HybridBlock):  # F.QFullyConnected on a parameter of its own
        def __init__(self, **kw):
            super().__init__(**kw)
            self.w = self.params.get("w", shape=(5, 10 * 6 * 6))

        def hybrid_forward(self, F, x, w):
            return F.QFullyConnected(x, w, num_hidden=5, no_bias=True, act_bit=1, weight_bit=1)

    d = mx.sym.var("x")
    inner = mx.gluon.SymbolBlock(
        mx.sym.QConvolution(d, num_filter=10, kernel=(3, 3), no_bias=True, name="inner_qc",
                            act_bit=1, weight_bit=1), d)
    net = mx.gluon.nn.HybridSequential(prefix="n_")
    with net.name_scope():
        net.add(QConv2D(4, 3, in_channels=2, use_bias=False), inner, Direct(prefix="direct_"))
    s = summary(net, (1, 2, 10, 10), print_fn=None)
    rows = {r.name: r for r in s.layers}
    assert rows["inner_qc"].binary_macs == 10 * 6 * 6 * 4 * 9
    assert rows["inner_qc"].params_1bit == 10 * 4 * 9
    assert s.totals["binary_macs"] == 4 * 8 * 8 * 18 + 10 * 36 * 36 + 5 * 360
    assert s.totals["params_1bit"] == 4 * 18 + 10 * 36 + 5 * 360


def test_input_that_does_not_fit_is_a_clear_error():
    net = mx.gluon.SymbolBlock(_small_symbol(), mx.sym.var("data"))
    with pytest.raises(ValueError, match=r"does not take input \(1, 3, 2, 2\).*kernel size"):
        summary(net, (1, 3, 2, 2), print_fn=None)
    with pytest.raises(ValueError, match=r"does not take input \(1, 1, 4, 4\)"):
        summary(model_zoo.get_model("binary_lenet"), (1, 1, 4, 4), print_fn=None)
    two = mx.gluon.SymbolBlock(mx.sym.var("a") + mx.sym.var("b"),
                               [mx.sym.var("a"), mx.sym.var("b")])
    with pytest.raises(ValueError, match="one input"):
        summary(two, (1, 3), print_fn=None)
