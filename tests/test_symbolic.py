"""The symbol and Module APIs (what BMXNet's users wrote) never crash on the Q-operators.

MXNet's custom-operator wrapper overruns the heap when a Q-layer input has unknown ndim at shape
inference (bmxnet.shape_inference). Each test runs its API path in a child interpreter under
glibc's malloc checker, for QConvolution / QFullyConnected / QActivation x data of 1-4 dims x
bias or not, and compares what the Q-layer gives with what MXNet's own Convolution /
FullyConnected / identity give on the same graph: the same shapes, or an error for both.
"""
import json
import os

import pytest

from subproc import describe, expect_error, expect_ok, run_snippet

DATA = {1: (6,), 2: (2, 12), 3: (2, 3, 4), 4: (2, 3, 6, 6)}

# One child per (operator, path); it prints one json line of {case: result} for the Q-layer
# and for the built-in reference.
HARNESS = r'''
import json, os, tempfile, warnings
warnings.simplefilter("ignore")
from mxnet import gluon
OP = {op!r}
PATH = {path!r}
DATA = {data!r}

def layer(x, no_bias, q, weight=None):
    kw = {{}} if weight is None else {{"weight": weight}}
    if OP == "QConvolution":
        f = mx.sym.QConvolution if q else mx.sym.Convolution
        return f(x, num_filter=4, kernel=(3, 3), no_bias=no_bias, name="layer", **kw)
    if OP == "QFullyConnected":
        f = mx.sym.QFullyConnected if q else mx.sym.FullyConnected
        return f(x, num_hidden=5, no_bias=no_bias, name="layer", **kw)
    return mx.sym.QActivation(x, name="layer") if q else mx.sym.identity(x, name="layer")

def strip_hints(sym):
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        if node["op"] == "null" and node["name"] != "data":
            node.get("attrs", {{}}).pop("__shape__", None)
    return json.dumps(graph)

def run(shape, no_bias, q):
    x = mx.sym.var("data")
    if PATH == "infer_shape":
        return layer(x, no_bias, q).infer_shape(data=shape)
    if PATH == "infer_shape_partial":
        s = layer(x, no_bias, q)
        # with nothing known, the Q-layer's parameters still carry their hints: compare outputs
        return [s.infer_shape_partial(data=shape), s.infer_shape_partial()[1]]
    if PATH == "explicit_weight":
        return layer(x, no_bias, q, weight=mx.sym.var("w")).infer_shape(data=shape)
    if PATH == "flatten_batchnorm":
        s = mx.sym.BatchNorm(layer(mx.sym.Flatten(x) if len(shape) > 1 else x, no_bias, q))
        return s.infer_shape(data=shape)
    if PATH == "simple_bind":
        ex = layer(x, no_bias, q).simple_bind(mx.cpu(), data=shape)
        return [ex.forward(is_train=False)[0].shape]
    if PATH == "module":
        mod = mx.mod.Module(layer(x, no_bias, q), data_names=["data"], label_names=None)
        mod.bind(data_shapes=[("data", shape)], for_training=False)
        mod.init_params(mx.init.Uniform(1))
        mod.forward(mx.io.DataBatch([mx.nd.ones(shape)]), is_train=False)
        return [mod.get_outputs()[0].shape]
    if PATH == "load_json":
        text = strip_hints(layer(x, no_bias, q))
        path = os.path.join(tempfile.mkdtemp(), "m-symbol.json")
        with open(path, "w") as f:
            f.write(text)
        return [mx.sym.load(path).infer_shape(data=shape),
                mx.sym.load_json(text).infer_shape(data=shape)]
    if PATH == "symbol_block":
        block = gluon.SymbolBlock(mx.sym.load_json(strip_hints(layer(x, no_bias, q))), x)
        block.initialize()
        return [block(mx.nd.ones(shape)).shape]
    raise SystemExit("unknown path " + PATH)

results = {{}}
for ndim, shape in DATA.items():
    for no_bias in (False, True):
        if OP == "QActivation" and no_bias:
            continue
        case = "%dd-%s" % (ndim, "nobias" if no_bias else "bias")
        for q in (True, False):
            try:
                out = ("ok", str(run(tuple(shape), no_bias, q)))
            except Exception as e:  # MXNetError, or simple_bind's/Gluon's wrappers of it
                out = ("error", "%s: %s" % (type(e).__name__, str(e)[-300:]))
            results.setdefault(case, {{}})["q" if q else "ref"] = out
print("RESULTS " + json.dumps(results))
'''

PATHS = ["infer_shape", "infer_shape_partial", "explicit_weight", "flatten_batchnorm",
         "simple_bind", "module", "load_json", "symbol_block"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("op", ["QConvolution", "QFullyConnected", "QActivation"])
def test_symbolic_path_matches_builtin(op, path):
    proc = run_snippet(HARNESS.format(op=op, path=path, data=DATA), malloc_check=True)
    assert proc.returncode == 0, describe(proc)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert line, describe(proc)
    results = json.loads(line[-1][len("RESULTS "):])
    for case, got in results.items():
        q, ref = got["q"], got["ref"]
        assert q[0] == ref[0], "%s %s %s: Q-layer %s, built-in %s" % (op, path, case, q, ref)
        if q[0] == "ok":
            assert q[1] == ref[1], "%s %s %s: Q-layer %s, built-in %s" % (op, path, case, q, ref)


def test_issue_reproducers_under_malloc_checker():
    out = expect_ok("""
        s = mx.sym.QFullyConnected(mx.sym.var('data'), num_hidden=10)
        print(s.infer_shape(data=(2, 48)))
        c = mx.sym.QConvolution(mx.sym.var('data'), num_filter=4, kernel=(3, 3))
        print(c.infer_shape(data=(2, 3, 8, 8)))
        print(c.infer_shape_partial())
        """, malloc_check=True)
    lines = out.splitlines()
    assert lines[0] == "([(2, 48), (10, 48), (10,)], [(2, 10)], [])"
    assert lines[1] == "([(2, 3, 8, 8), (4, 3, 3, 3), (4,)], [(2, 4, 6, 6)], [])"
    assert lines[2] == "([(), (4, 0, 3, 3), (4,)], [()], [])"


def test_partial_inference_with_an_unknown_batch():
    # MXNet's own layers on the same graph give the same output and data shapes.
    out = expect_ok("""
        for conv, fc in ((mx.sym.QConvolution, mx.sym.QFullyConnected),
                         (mx.sym.Convolution, mx.sym.FullyConnected)):
            s = fc(conv(mx.sym.var('data'), num_filter=4, kernel=(3, 3), name='c'),
                   num_hidden=3, name='f')
            args, outs, _ = s.infer_shape_partial(data=(0, 3, 8, 8))
            print(args[0], outs, args[-2:])
        """, malloc_check=True)
    q, ref = out.splitlines()[-2:]
    assert q == ref == "(0, 3, 8, 8) [(0, 3)] [(3, 144), (3,)]"


def test_zero_d_array_is_a_clear_error():
    expect_error("mx.nd.QActivation(mx.nd.array(np.float32(3)))", "ValueError",
                 "QActivation: input 'data' is a 0-d array", "reshape((1,))")


def test_simple_bind_with_unknown_data_is_a_clear_error():
    expect_error("""
        w = mx.sym.var('w')
        s = mx.sym.QFullyConnected(mx.sym.var('data') * 2, weight=w, num_hidden=3, name='fc1')
        s.simple_bind(mx.cpu())
        """, "MXNetError", "QFullyConnected 'fc1'", "input 'data'", "give the shapes of: data",
        malloc_check=True)


def test_weight_computed_from_an_unshaped_variable_is_a_clear_error():
    expect_error("""
        w = mx.sym.identity(mx.sym.var('w'))
        s = mx.sym.QConvolution(mx.sym.var('data'), weight=w, num_filter=4, kernel=(3, 3),
                                no_bias=True, name='conv')
        s.simple_bind(mx.cpu(), data=(1, 3, 8, 8))
        """, "MXNetError", "QConvolution 'conv'", "input 'weight'", "give the shapes of: w",
        malloc_check=True)


def test_executor_reshape_keeps_working():
    out = expect_ok("""
        s = mx.sym.QConvolution(mx.sym.var('data'), num_filter=4, kernel=(3, 3), pad=(1, 1))
        ex = s.simple_bind(mx.cpu(), data=(1, 3, 8, 8))
        ex2 = ex.reshape(allow_up_sizing=True, data=(3, 3, 8, 8))
        print(ex2.forward()[0].shape)
        """, malloc_check=True)
    assert out.splitlines()[-1] == "(3, 4, 8, 8)"


def test_created_variables_carry_hints_and_hidden_attributes():
    out = expect_ok("""
        import json
        s = mx.sym.QConvolution(mx.sym.var('data'), num_filter=8, kernel=(3, 3), name='c',
                                attr={'lr_mult': '0.1', '__wd_mult__': '0'})
        nodes = {n['name']: n.get('attrs', {}) for n in json.loads(s.tojson())['nodes']}
        print(json.dumps([nodes['c_weight'], nodes['c_bias']], sort_keys=True))
        """)
    weight, bias = json.loads(out.splitlines()[-1])
    assert weight["__shape__"] == "(8, 0, 3, 3)" and bias["__shape__"] == "(8,)"
    for attrs in (weight, bias):
        assert attrs["__lr_mult__"] == "0.1" and attrs["__wd_mult__"] == "0"


def test_lr_mult_reaches_the_optimizer():
    # The learning rate the Module's optimizer uses for the weight: lr_mult 0 freezes it.
    out = expect_ok("""
        data = mx.sym.var('data')
        net = mx.sym.QFullyConnected(data, num_hidden=3, name='fc', attr={'lr_mult': '0'})
        net = mx.sym.SoftmaxOutput(net, name='softmax')
        mod = mx.mod.Module(net)
        mod.bind(data_shapes=[('data', (4, 8))], label_shapes=[('softmax_label', (4,))])
        mod.init_params(mx.init.Uniform(1))
        mod.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 1.0})
        before = mod.get_params()[0]['fc_weight'].asnumpy().copy()
        batch = mx.io.DataBatch([mx.nd.random.uniform(-1, 1, (4, 8))], [mx.nd.array([0, 1, 2, 0])])
        mod.forward_backward(batch)
        mod.update()
        after = mod.get_params()[0]
        print(np.abs(after['fc_weight'].asnumpy() - before).max())
        """)
    assert float(out.splitlines()[-1]) == 0.0


MLP = """
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.float32)
    # BMXNet's mnist_deep, ported: full-precision first layer, two binary hidden layers
    data = mx.sym.Flatten(mx.sym.var('data'))
    net = mx.sym.FullyConnected(data, num_hidden=128, name='fc1')
    net = mx.sym.BatchNorm(net, name='bn1')
    net = mx.sym.QActivation(net, act_bit=1, name='qact1')
    net = mx.sym.QFullyConnected(net, num_hidden=128, act_bit=1, weight_bit=1, name='qfc2')
    net = mx.sym.BatchNorm(net, name='bn2')
    net = mx.sym.QActivation(net, act_bit=1, name='qact2')
    net = mx.sym.FullyConnected(net, num_hidden=10, name='fc3')
    net = mx.sym.SoftmaxOutput(net, name='softmax')
    mx.random.seed(0)
    np.random.seed(0)
    train = mx.io.NDArrayIter(x[:1400], y[:1400], batch_size=50, shuffle=True)
    test = mx.io.NDArrayIter(x[1400:], y[1400:], batch_size=50)
    mod = mx.mod.Module(net, context=mx.cpu())
    mod.fit(train, eval_data=test, optimizer='adam', optimizer_params={'learning_rate': 0.01},
            num_epoch=4, eval_metric='acc')
    print('ACC', mod.score(test, 'acc')[0][1])
"""


def test_module_fit_of_bmxnet_mnist_deep():
    out = expect_ok(MLP, malloc_check=True)
    acc = float([ln for ln in out.splitlines() if ln.startswith("ACC")][-1].split()[1])
    assert acc > 0.8, out



@pytest.mark.parametrize("how", ["sym.load", "load_json", "SymbolBlock.imports"])
def test_bmxnet_v1_json_loaded_directly_names_the_migration(how):
    legacy = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                          "shared", "bmxnet_legacy")
    prefix = os.path.join(legacy, "binarized_mnist_64bit")
    if not os.path.exists(prefix + "-symbol.json"):
        pytest.skip("../shared/bmxnet_legacy is not beside the checkout")
    call = {"sym.load": "mx.sym.load(P + '-symbol.json')",
            "load_json": "mx.sym.load_json(open(P + '-symbol.json').read())",
            "SymbolBlock.imports": "mx.gluon.SymbolBlock.imports(P + '-symbol.json', ['data'], "
                                   "P + '-0001.params')"}[how]
    expect_error("P = %r\n%s\n" % (prefix, call), "MXNetError", "BMXNet v1 file",
                 "--from-bmxnet", "bmxnet.legacy.load")


def test_import_bmxnet_exposes_converter_and_legacy():
    expect_ok("assert callable(bmxnet.legacy.load) and "
              "callable(bmxnet.converter.convert_checkpoint)")


def test_dimension_past_2_31_is_an_mxnet_error():
    # MXNet's own Python code raises a bare Exception here (32-bit shape calls in this wheel).
    expect_error("""
        s = mx.sym.QFullyConnected(mx.sym.var('data'), num_hidden=3)
        s.infer_shape(data=(2, 2 ** 31))
        """, "MXNetError", "shape (2, 2147483648) of data", "[0, 2147483647]")
