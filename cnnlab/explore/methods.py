"""The page's "Methods": cnnlab.viz's visualisation methods on the shown input.

``POST /api/method`` takes the input of ``/api/predict`` plus ``{"method", "target", ...}``
and calls the viz function itself (nothing is reimplemented here):

* ``saliency``, ``guided``, ``deconvnet`` -- :mod:`cnnlab.viz.attribution`; ``heat`` (H x W),
  the map over the input (guided and DeconvNet summed over colour channels, signed);
* ``occlusion`` -- ``heat`` (H' x W'): p(target) with each ``size`` square occluded, ``size``
  and ``stride`` as ``cnnlab viz occlusion`` picks them; its progress goes to the event stream;
* ``fgsm`` -- :func:`cnnlab.viz.adversarial.fgsm` at ``eps`` (raw pixel units) against the
  predicted class: the adversarial input, the perturbation and the new probabilities;
* ``class_model`` -- :func:`cnnlab.viz.synthesis.class_model` for ``target``: an image (its
  progress goes to the event stream);
* ``filters`` -- :func:`cnnlab.viz.filters.filter_images` of the first convolution;
* ``top9`` -- :func:`cnnlab.viz.topk.top_k_activating` of conv unit ``channel`` of ``layer``
  over the run's test images, cropped to the receptive field (:func:`crop_patches`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from cnnlab.explore.api import ApiError, int_field
from cnnlab.explore.session import encode_array

__all__ = ["METHODS", "run_method", "TOP_K_IMAGES"]

METHODS = ("saliency", "guided", "deconvnet", "occlusion", "fgsm", "class_model", "filters", "top9")
#: the top-9 search looks at most at this many test images
TOP_K_IMAGES = 2000


def _norm(explorer) -> tuple[Any, Any]:
    norm = explorer.meta.get("normalize") or {"mean": 0.0, "std": 1.0}
    return norm["mean"], norm["std"]


def _stat(v: Any, C: int) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) * np.ones((C, 1, 1))


def _probabilities(explorer, x: np.ndarray) -> list[float]:
    from cnnlab.kernels.activation import softmax_forward

    logits, _ = explorer._forward(x, [])
    return softmax_forward(logits[0], axis=0).tolist()


def run_method(explorer, fields: dict[str, Any], x: np.ndarray | None, raw: np.ndarray | None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The answer of ``POST /api/method`` (``x`` and ``raw``: the input, (1, C, S, S))."""
    from cnnlab.viz import attribution as A

    method = fields.get("method")
    if method not in METHODS:
        raise ApiError(400, f"'method' must be one of {', '.join(METHODS)}, got {str(method)[:40]!r}")
    classes = explorer.classes()
    out: dict[str, Any] = {"method": method}
    if method in ("filters", "class_model", "top9"):
        return {**out, **_without_input(explorer, method, fields, classes, progress)}
    if x is None:
        raise ApiError(400, f"{method} needs an input: an 'image' or a 'test_index'")
    p = _probabilities(explorer, x)
    predicted = int(np.argmax(p))
    target = int_field(fields, "target", predicted, hi=len(classes) - 1)
    out.update(target=target, target_name=classes[target])
    model = explorer.model
    with explorer.lock:
        if method in ("saliency", "guided", "deconvnet"):
            fn = {"saliency": A.saliency, "guided": A.guided_backprop, "deconvnet": A.deconvnet}[method]
            g = np.asarray(fn(model, x, target), dtype=np.float64)[0]
            heat = g if g.ndim == 2 else g.sum(axis=0)
            return {**out, "heat": encode_array(heat), "signed": method != "saliency"}
        if method == "occlusion":
            size, stride = A.occlusion_size(x.shape[-1])
            heat = np.asarray(A.occlusion(model, x, target, size, stride, progress=progress))[0]
            return {**out, "heat": encode_array(heat), "signed": False, "size": size, "stride": stride,
                    "probability": p[target]}
    # fgsm
    from cnnlab.viz.adversarial import fgsm

    eps = fields.get("eps", 0.1)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1:
        raise ApiError(400, f"'eps' must be a number in [0, 1] (raw pixel units), got {str(eps)[:40]}")
    mean, std = _norm(explorer)
    with explorer.lock:
        adv = np.asarray(fgsm(model, x, target, float(eps), pixel_range=(0.0, 1.0), mean=mean, std=std))
    C = x.shape[1]
    adv_raw = adv[0] * _stat(std, C) + _stat(mean, C)
    q = _probabilities(explorer, adv.astype(x.dtype))
    return {**out, "eps": float(eps), "image": encode_array(np.clip(adv_raw, 0, 1)),
            "perturbation": encode_array(adv_raw - raw[0]), "probabilities": q,
            "prediction": int(np.argmax(q)), "before": {"prediction": predicted, "probabilities": p}}


def _without_input(explorer, method: str, fields: dict[str, Any], classes: list[str],
                   progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    model = explorer.model
    if method == "filters":
        from cnnlab.viz.filters import filter_images, first_conv_name

        try:
            name = first_conv_name(model)
        except ValueError as e:
            raise ApiError(400, str(e)) from e
        w = model.get_submodule(name).weight.data
        return {"layer": name, "shape": list(w.shape), "images": encode_array(filter_images(w))}
    if method == "class_model":
        from cnnlab.viz.synthesis import class_model

        target = int_field(fields, "target", hi=len(classes) - 1)
        mean, std = _norm(explorer)
        C, S = explorer.channels, explorer.input_size
        m, s = _stat(mean, C), _stat(std, C)
        rng = (float(((0.0 - m) / s).min()), float(((1.0 - m) / s).max()))
        with explorer.lock:
            img = class_model(model, target, (C, S, S), pixel_range=rng, progress=progress)
        img = np.asarray(img, dtype=np.float64)
        q = _probabilities(explorer, img[None].astype(np.float32))
        return {"target": target, "target_name": classes[target], "probability": q[target],
                "image": encode_array(np.clip(img * s + m, 0, 1))}
    # top9
    from cnnlab.viz.inputs import model_pipeline
    from cnnlab.viz.topk import crop_patches, top_k_activating

    name = fields.get("layer")
    if not isinstance(name, str):
        raise ApiError(400, "'layer' must be a conv or pool layer's name (see GET /api/model)")
    layer = explorer.layer(name)
    if len(layer.shape) != 3:
        raise ApiError(400, f"top-9 needs a layer with maps; {name!r} gives a vector of {layer.shape[0]}")
    channel = int_field(fields, "channel", hi=layer.shape[0] - 1)
    n = explorer.test_count()
    if not n:
        raise ApiError(400, "this model has no test images (an untrained zoo model)")
    test = explorer._test_set()
    raw_small = np.asarray(test.x[:TOP_K_IMAGES], dtype=np.float32)
    raw, x = model_pipeline(raw_small, explorer.meta)
    with explorer.lock:
        top = top_k_activating(model, name, channel, x, k=9)
    patches = crop_patches(raw, top)
    labels = np.asarray(test.y[:TOP_K_IMAGES])
    return {"layer": name, "channel": channel, "searched": len(x),
            "items": [{"index": int(i), "value": float(v), "label": classes[int(labels[i])],
                       "box": [int(b) for b in box], "patch": encode_array(patch)}
                      for i, v, box, patch in zip(top.indices, top.values, top.boxes, patches)]}
