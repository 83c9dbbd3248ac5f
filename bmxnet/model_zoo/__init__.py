"""Binary networks from the literature, gluoncv style.

>>> net = bmxnet.model_zoo.get_model('birealnet18')          # 224x224 ImageNet
>>> net = bmxnet.model_zoo.get_model('binary_resnet18_cifar')  # 32x32, 10 classes
>>> bmxnet.model_zoo.get_model_list()

Every model is registered where it is defined (``@register_model``); names are lowercase and
``get_model`` lists the valid ones on a miss. Constructors take gluoncv's ``classes``,
``pretrained`` (always an error: bmxnet ships no weights), ``ctx``, ``root``, ``norm_layer`` /
``norm_kwargs``, plus ``input_quantizer`` / ``kernel_quantizer`` to change the binarization.
"""
from .model_zoo import get_model, get_model_list, register_model
from . import alexnet, binarynet, birealnet, lenet, reactnet, resnet  # noqa: F401  (register)
from .alexnet import BinaryAlexNet, XNORNet
from .binarynet import BinaryNet
from .birealnet import BiRealBlock, BiRealNet, PeleeStem
from .lenet import BinaryLeNet
from .reactnet import ReActBlock, ReActNet
from .resnet import BinaryBasicBlock, BinaryResNet

__all__ = ["get_model", "get_model_list", "register_model", "BinaryAlexNet", "XNORNet",
           "BinaryNet", "BiRealBlock", "BiRealNet", "PeleeStem", "BinaryLeNet", "ReActBlock",
           "ReActNet", "BinaryBasicBlock", "BinaryResNet"]
