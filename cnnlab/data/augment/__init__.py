"""Data augmentation: random flips, crops, colour and lighting jitter, erasing.

The notes (AlexNet) enlarge the training set with label-preserving
distortions: horizontal reflections, random crops (224 of 256 pixels), and
colour / lighting noise along the principal components of the pixel colours.
Every transform here works on a whole batch ``(B, C, H, W)`` at once -- one
random draw per *sample*, vectorised, no Python loop over samples -- and on a
single image ``(C, H, W)``.  None of them modifies its input.

They act on **raw pixels in [0, 1]** (what :func:`~cnnlab.data.load_digits`
and :func:`~cnnlab.data.load_fashion_mnist` return), so put them *before*
``Pad`` / ``Resize`` / ``Normalize`` in a pipeline: zero padding is then
background, and :class:`ColorJitter` clamps to the valid range [0, 1].

Randomness and reproducibility
------------------------------
A random transform has the class attribute ``random = True`` and is called as
``t(x, rng=None)``.  With ``rng`` (a ``np.random.Generator``) it draws only
from that generator; without, from its own ``np.random.default_rng(seed)``
made at construction.  :class:`~cnnlab.data.transforms.Compose` forwards its
``rng`` to the random transforms it holds, and
:class:`~cnnlab.data.loader.DataLoader` passes
``np.random.default_rng([seed, epoch, batch_index, 1])``, so the augmented
batches depend only on (loader seed, epoch, batch index) and a resumed run
sees exactly the batches of an uninterrupted one.

One module per family: :mod:`~cnnlab.data.augment.geometric` (padding, flips,
crops), :mod:`~cnnlab.data.augment.colour` (colour jitter, PCA lighting),
:mod:`~cnnlab.data.augment.erasing` and :mod:`~cnnlab.data.augment.presets`
(:func:`build_augmentation`), all on :mod:`~cnnlab.data.augment.base`.
"""
from __future__ import annotations

from cnnlab.data.augment.base import RandomTransform, Seed  # noqa: F401
from cnnlab.data.augment.colour import (
    IMAGENET_EIGVAL,
    IMAGENET_EIGVEC,
    ColorJitter,
    Lighting,
    PCALighting,
    grey,  # noqa: F401
    pca_lighting_basis,
)
from cnnlab.data.augment.erasing import RandomErasing
from cnnlab.data.augment.geometric import (
    CenterCrop,
    RandomCrop,
    RandomHorizontalFlip,
    crop_windows,  # noqa: F401
    pad_images,  # noqa: F401
)
from cnnlab.data.augment.presets import (
    AUGMENTATION_NAMES,
    build_augmentation,
    crop_padding,  # noqa: F401
)

__all__ = [
    "AUGMENTATION_NAMES",
    "IMAGENET_EIGVAL",
    "IMAGENET_EIGVEC",
    "CenterCrop",
    "ColorJitter",
    "Lighting",
    "PCALighting",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "build_augmentation",
    "pca_lighting_basis",
]
