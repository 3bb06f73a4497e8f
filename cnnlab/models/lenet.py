"""LeNet-5 (the notes' modern form) and the small default net for 8x8 digits."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import (
    ConnectionTable,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    RBFOutput,
    ReLU,
    ScaledTanh,
    Sequential,
    Subsample2d,
    init,
    lenet5_c3_table,
)


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


class LeNet5_1998(Module):
    """LeNet-5 as LeCun et al. (1998) built it, layer by layer:

    * input 32x32 (MNIST's 28x28 padded by 2, as in the paper);
    * C1: 6 maps of 5x5 -> 28x28, then the scaled tanh f(a) = 1.7159 tanh(2a/3);
    * S2: trainable subsampling, x = beta * (sum of 2x2 block) + b per map, then f -> 14x14;
    * C3: 16 maps of 5x5 with the paper's 6 -> 16 connection table (1,516 parameters), f;
    * S4: trainable subsampling -> 5x5, f;
    * C5: 120 maps of 5x5 (each sees all of S4) -> 1x1, f;
    * F6: 84 units, f;
    * output: one Euclidean RBF unit per class, y_i = ||x - w_i||^2, a penalty
      (smallest wins).  ``forward`` returns the class *scores* -y, so argmax and
      ``cross_entropy`` apply directly (LeCun's MAP criterion without the
      "rubbish class" term).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32) -> None:
        super().__init__()
        if input_size != 32:
            raise ValueError(f"LeNet5_1998 takes 32x32 inputs (pad 28x28 images by 2), "
                             f"got input_size={input_size}")
        if in_channels != 1:
            raise ValueError(f"LeNet5_1998's C3 table is for 1-channel input, got {in_channels}")
        self.c1 = Conv2d(1, 6, 5)
        self.s2 = Subsample2d(6, 2)
        self.c3 = ConnectionTable(lenet5_c3_table(), 5)
        self.s4 = Subsample2d(16, 2)
        self.c5 = Conv2d(16, 120, 5)
        self.flatten = Flatten()
        self.f6 = Linear(120, 84)
        self.act = ScaledTanh()
        self.output = RBFOutput(84, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """LeCun's initialisation: weights U(-2.4/F, 2.4/F) with F the fan-in, so the
        scaled tanh starts in its linear range; the subsampling coefficients start
        as an average (beta = 1/4 over a 2x2 block) and the biases at 0."""
        for m in (self.c1, self.c3, self.c5, self.f6):
            fan_in = m.weight.numel() // m.weight.shape[0]
            if m is self.c3:   # only the connected input maps count, and the rest stay 0
                fan_in = int(m.mask().sum()) * 25 // m.weight.shape[0]
            init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
            if m is self.c3:
                m.weight.data *= m.mask()
            init.zeros_(m.bias)
        for s in (self.s2, self.s4):
            init.constant_(s.weight, 0.25)
            init.zeros_(s.bias)

    def forward(self, x: Tensor) -> Tensor:
        f = self.act
        x = f(self.s2(f(self.c1(x))))
        x = f(self.s4(f(self.c3(x))))
        x = f(self.f6(self.flatten(f(self.c5(x)))))
        return -self.output(x)


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


def lenet5_1998(num_classes: int = 10, in_channels: int = 1, input_size: int = 32) -> LeNet5_1998:
    return LeNet5_1998(num_classes, in_channels, input_size)


def digits_cnn(num_classes: int = 10, in_channels: int = 1, input_size: int = 8) -> DigitsCNN:
    return DigitsCNN(num_classes, in_channels, input_size)
