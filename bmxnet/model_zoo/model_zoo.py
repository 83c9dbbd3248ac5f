"""The model registry: ``get_model(name, **kwargs)`` and the ``register_model`` decorator."""
__all__ = ["get_model", "get_model_list", "register_model"]

_MODELS = {}


def register_model(*names):
    """Registers a model constructor under one or more (lowercase) names.

    Used where each model is defined::

        @register_model("birealnet18")
        def birealnet18(**kwargs): ...
    """
    def wrap(fn):
        for name in names:
            key = name.lower()
            if key in _MODELS and _MODELS[key] is not fn:
                raise ValueError("model name %r is registered twice (%s and %s)"
                                 % (key, _MODELS[key].__qualname__, fn.__qualname__))
            _MODELS[key] = fn
        return fn
    return wrap


def get_model_list():
    """Sorted names of every registered model."""
    return sorted(_MODELS)


def get_model(name, **kwargs):
    """A model of the zoo by name (case-insensitive), built with ``kwargs``.

    Parameters
    ----------
    name : str
        See :func:`get_model_list`.
    classes : int
        Number of classes (1000 for ImageNet models, 10 for CIFAR / MNIST ones by default).
    pretrained : bool, default False
        bmxnet ships no weights: True raises ValueError.
    ctx : Context, default mx.cpu()
        Where the parameters go when the constructor initializes them (it never does; call
        ``net.initialize(ctx=...)``); kept for gluoncv compatibility.
    **kwargs
        The constructor's other arguments: ``input_quantizer``, ``kernel_quantizer``,
        ``norm_layer``, ``norm_kwargs`` ...

    Returns
    -------
    HybridBlock

    Raises
    ------
    ValueError
        On an unknown name, listing every valid name.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _MODELS:
        raise ValueError("model %r is not in the bmxnet model zoo; valid names are:\n\t%s"
                         % (name, "\n\t".join(get_model_list())))
    return _MODELS[key](**kwargs)
