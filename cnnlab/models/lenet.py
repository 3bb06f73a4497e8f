"""LeNet-5 (the notes' modern form) and the small default net for 8x8 digits."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential


class LeNet5(Module):
    """conv 5x5 x6 -> pool -> conv 5x5 x16 -> pool -> FC 120 -> FC 84 -> FC classes.

    The notes' modern LeNet: ReLU and 2x2 max pooling.  On a 32x32 input the
    first conv is unpadded (28x28 maps, as in LeCun 1998); on smaller inputs
    such as 28x28 MNIST it is padded by 2 so C1 still sees the whole image and
    the final maps are 5x5x16 in both cases.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        if input_size < 20:
            raise ValueError(f"LeNet5 needs inputs of at least 20x20, got input_size={input_size}")
        pad = 2 if input_size < 32 else 0
        self.input_size = input_size
        self.features = Sequential(
            Conv2d(in_channels, 6, 5, padding=pad), ReLU(), MaxPool2d(2),
            Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),
        )
        side = ((input_size + 2 * pad - 4) // 2 - 4) // 2
        self.flatten = Flatten()
        self.classifier = Sequential(
            Linear(16 * side * side, 120), ReLU(),
            Linear(120, 84), ReLU(),
            Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


class DigitsCNN(Module):
    """The default model for scikit-learn's 8x8 digits.

    conv 3x3 x16 (same) -> ReLU -> pool 2 -> conv 3x3 x32 (same) -> ReLU ->
    pool 2 -> FC 64 -> ReLU -> FC classes.  8x8 -> 4x4 -> 2x2x32 = 128 features.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 8) -> None:
        super().__init__()
        if input_size % 4:
            raise ValueError(f"DigitsCNN needs an input size divisible by 4, got {input_size}")
        side = input_size // 4
        self.features = Sequential(
            Conv2d(in_channels, 16, 3, padding=1), ReLU(), MaxPool2d(2),
            Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
        )
        self.flatten = Flatten()
        self.classifier = Sequential(Linear(32 * side * side, 64), ReLU(), Linear(64, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet5:
    return LeNet5(num_classes, in_channels, input_size)


def digits_cnn(num_classes: int = 10, in_channels: int = 1, input_size: int = 8) -> DigitsCNN:
    return DigitsCNN(num_classes, in_channels, input_size)
