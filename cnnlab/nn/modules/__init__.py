from cnnlab.nn.modules.activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from cnnlab.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from cnnlab.nn.modules.container import ModuleList, Sequential
from cnnlab.nn.modules.conv import Conv2d
from cnnlab.nn.modules.dropout import Dropout
from cnnlab.nn.modules.linear import Flatten, Identity, Linear
from cnnlab.nn.modules.loss import CrossEntropyLoss, MSELoss, NLLLoss
from cnnlab.nn.modules.pooling import AvgPool2d, MaxPool2d

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Flatten", "Identity", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "ModuleList",
           "NLLLoss", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh"]
