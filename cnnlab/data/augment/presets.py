"""The named training-time augmentation presets: :func:`build_augmentation`."""
from __future__ import annotations

import numpy as np

from cnnlab.data.augment.colour import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Lighting, pca_lighting_basis
from cnnlab.data.augment.erasing import RandomErasing
from cnnlab.data.augment.geometric import RandomCrop, RandomHorizontalFlip

__all__ = ["AUGMENTATION_NAMES", "build_augmentation", "crop_padding"]

#: Names accepted by :func:`build_augmentation`.
AUGMENTATION_NAMES: tuple[str, ...] = ("none", "crop", "flip-crop", "alexnet", "erasing")


def crop_padding(image_size: int) -> int:
    """The ``RandomCrop`` padding of the presets: 1/8 of the side, at least 1 pixel."""
    return max(1, image_size // 8)


def build_augmentation(name: str, image_size: int, channels: int, *, images: np.ndarray | None = None,
                       seed: int | None = None) -> list:
    """The training-time augmentation preset ``name``, as a list of transforms.

    Parameters
    ----------
    name : {'none', 'crop', 'flip-crop', 'alexnet', 'erasing'}
        - ``none``: no augmentation (an empty list).
        - ``crop``: ``RandomCrop(image_size, padding=max(1, image_size // 8))``,
          random shifts of up to 1/8 of the side (3 px on 28×28, 1 px on 8×8).
        - ``flip-crop``: ``crop`` + ``RandomHorizontalFlip(0.5)``.
        - ``alexnet``: ``flip-crop`` + PCA ``Lighting(0.1)`` (AlexNet's recipe,
          with shifted crops of the same size instead of 224-of-256 crops).
        - ``erasing``: ``flip-crop`` + ``RandomErasing(0.5, value=0)``.
    image_size : int
        Side of the (square) raw training images; the output keeps this size.
    channels : int
        Number of channels (the PCA basis needs it).
    images : ndarray (N, C, H, W), optional
        Training images; ``alexnet`` computes its PCA basis from them with
        :func:`pca_lighting_basis`.  Required for ``alexnet`` unless
        ``channels == 3``, where ImageNet's basis is the default.
    seed : int, optional
        Seeds the transforms' fallback generators (a :class:`DataLoader`
        passes its own generator anyway).

    Returns
    -------
    list of transforms, to go *before* Pad / Resize / Normalize (raw pixels).

    Notes
    -----
    Which suit which data: horizontal flips preserve the label of clothes, so
    ``flip-crop``, ``alexnet`` and ``erasing`` suit **Fashion-MNIST** (and
    natural images).  They do **not** suit **digits** (a mirrored 2, 3, 4, 7
    or 9 is no longer that digit); use ``crop`` there.  On grey images the
    PCA lighting of ``alexnet`` is additive brightness noise.
    """
    if name not in AUGMENTATION_NAMES:
        raise ValueError(f"build_augmentation: unknown augmentation {name!r}; "
                         f"choose one of {', '.join(AUGMENTATION_NAMES)}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size <= 0:
        raise ValueError(f"build_augmentation: image_size must be a positive int, got {image_size!r}")
    if name == "none":
        return []
    seeds = np.random.SeedSequence(seed).spawn(3)
    steps: list = [RandomCrop(image_size, padding=crop_padding(image_size), seed=seeds[0])]
    if name == "crop":
        return steps
    steps.append(RandomHorizontalFlip(0.5, seed=seeds[1]))
    if name == "alexnet":
        if images is not None:
            if np.shape(images)[1] != channels:
                raise ValueError(f"build_augmentation: images have {np.shape(images)[1]} channels, "
                                 f"expected {channels}")
            eigval, eigvec = pca_lighting_basis(images)
        elif channels == 3:
            eigval, eigvec = IMAGENET_EIGVAL, IMAGENET_EIGVEC
        else:
            raise ValueError(f"build_augmentation: 'alexnet' on {channels}-channel images needs "
                             "images=... (the training set) to compute the PCA lighting basis")
        steps.append(Lighting(0.1, eigval, eigvec, seed=seeds[2]))
    elif name == "erasing":
        steps.append(RandomErasing(0.5, value=0.0, seed=seeds[2]))
    return steps
