"""``binarize(net)``: turn a float Gluon model into a binary one, layer for layer.

Every ``nn.Conv2D`` / ``nn.Dense`` (in the order the forward pass calls them) is replaced by a
``QConv2D`` / ``QDense`` with the same configuration (channels, kernel, strides, padding,
dilation, groups, bias, activation, flatten) and the *same* Parameter objects, so trained float
weights become the latent weights of the binary layers and the parameter names do not change
(``save_parameters`` files of the float model still load). The first and the last of those layers
stay float by default, as in BMXNet's, XNOR-Net's and Bi-Real Net's recipes.

Caveat: a ReLU directly in front of a binary convolution makes its input non-negative, and sign
of a non-negative tensor is constant (+1). Binary architectures remove those ReLUs (see the model
zoo); binarize does not restructure the network.
"""
import mxnet as mx
from mxnet.gluon import nn

from .gluon.layers import QConv2D, QDense

__all__ = ["binarize"]


def _call_order(net):
    """Conv2D / Dense blocks in the order the forward pass calls them, with their parents."""
    parents = {}

    def walk(b):
        for key, child in b._children.items():
            parents.setdefault(id(child), (b, key))
            walk(child)
    walk(net)
    order, handles = [], []

    def hook(blk, *_):
        if blk not in order:
            order.append(blk)

    def visit(b):
        if isinstance(b, (nn.Conv2D, nn.Dense)) and not isinstance(b, (QConv2D, QDense)):
            handles.append(b.register_forward_pre_hook(hook))
        for c in b._children.values():
            visit(c)
    visit(net)
    try:
        net(mx.sym.var("data"))
    finally:
        for h in handles:
            h.detach()
    return [(b, parents[id(b)]) for b in order]


def _act_type(layer):
    return layer.act._act_type if layer.act is not None else None


def _replacement(layer, q):
    kw = dict(prefix=layer.prefix, params=layer.params, **q)
    if isinstance(layer, nn.Conv2D):
        k = layer._kwargs
        if k.get("layout", "NCHW") != "NCHW":
            raise ValueError("binarize: %s has layout %s; QConv2D supports NCHW only"
                             % (layer.name, k["layout"]))
        return QConv2D(k["num_filter"], k["kernel"], strides=k["stride"], padding=k["pad"],
                       dilation=k["dilate"], groups=k["num_group"], use_bias=not k["no_bias"],
                       activation=_act_type(layer), in_channels=layer._in_channels, **kw)
    return QDense(layer._units, activation=_act_type(layer), use_bias=layer.bias is not None,
                  flatten=layer._flatten, in_units=layer._in_units, **kw)


def _replace(parent, key, old, new):
    if getattr(parent, key, None) is old:
        setattr(parent, key, new)  # attribute children (self.output = nn.Dense(...))
    else:
        parent._children[key] = new  # Sequential children


def binarize(net, skip_first=True, skip_last=True, *, input_quantizer="ste_sign",
             kernel_quantizer="ste_sign"):
    """Replaces the Conv2D / Dense layers of ``net`` with binary QConv2D / QDense, in place.

    Parameters
    ----------
    net : HybridBlock
        A float model, e.g. ``gluoncv.model_zoo.get_model('resnet18_v1')`` (initialized or not).
    skip_first, skip_last : bool, default True
        Keep the first / last Conv2D-or-Dense (in call order) in full precision.
    input_quantizer, kernel_quantizer : quantizer identifiers, default 'ste_sign'
        Given to every new layer (None keeps that side in float; with both None the network
        computes what it computed before).

    Returns
    -------
    HybridBlock
        ``net`` itself, with its layers replaced (hybridize again if it was hybridized).

    Examples
    --------
    >>> net = gluoncv.model_zoo.get_model('resnet18_v1')
    >>> bmxnet.binarize(net)   # 19 binary convolutions; conv0 and the classifier stay float
    """
    order = _call_order(net)
    if not order:
        raise ValueError("binarize: %s has no Conv2D or Dense layer" % net.name)
    q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
    chosen = order[1 if skip_first else 0:len(order) - 1 if skip_last else len(order)]
    for layer, (parent, key) in chosen:
        _replace(parent, key, layer, _replacement(layer, q))
    if getattr(net, "_active", False):
        net._clear_cached_op()
    return net
