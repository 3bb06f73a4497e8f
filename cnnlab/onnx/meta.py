"""An ONNX file as a model the rest of cnnlab can evaluate, summarise, visualise and explore.

A file written by ``cnnlab export`` from a run carries the run's metadata (model
name, input pipeline, dataset, class names, normalisation) as JSON in its
metadata_props under :data:`META_KEY`; :func:`load_for_evaluation` reads it back,
so ``cnnlab evaluate model.onnx`` runs like it does on the run's model.npz.  For a
file from elsewhere the metadata is made from the graph: its input (C, H, W), its
number of outputs, no dataset (``--dataset`` names one) and no normalisation.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cnnlab.onnx.checks import OnnxFileError

META_KEY = "cnnlab.meta"
#: the metadata of a run that describes how to feed and read its model
_KEPT = ("model_spec", "dataset", "classes", "normalize")


def export_metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """The metadata_props that carry a run's ``meta`` into an exported file."""
    kept = {k: meta[k] for k in _KEPT if meta.get(k) is not None}
    return {META_KEY: json.dumps(kept, sort_keys=True)} if kept else {}


def _graph_meta(model, name: str) -> dict[str, Any]:
    from cnnlab.autograd.tensor import Tensor, no_grad

    size = tuple(model.input_size)
    if len(size) != 3:
        raise OnnxFileError(f"{name}: input is (N, {', '.join(map(str, size))}); cnnlab runs "
                            "images (N, C, H, W)")
    with no_grad():
        out = model(Tensor(np.zeros((1, *size), dtype=np.float32)))
    spec = {"name": name, "kwargs": {"in_channels": size[0], "input_size": size[1],
                                     "num_classes": int(np.prod(out.shape[1:]))},
            "input": {"from": size[1], "to": size[1], "how": None}}
    return {"model_spec": spec, "dataset": None, "classes": None, "normalize": None}


def load_for_evaluation(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(the imported model in eval mode, its metadata), like
    :func:`cnnlab.training.builders.load_for_evaluation` for a model.npz."""
    from cnnlab.onnx.importer import load

    path = Path(path)
    model = load(path)
    meta = _graph_meta(model, path.name)
    stored = model.metadata.get(META_KEY)
    if stored is not None:
        try:
            kept = json.loads(stored)
        except json.JSONDecodeError as e:
            raise OnnxFileError(f"{path}: metadata {META_KEY} is not valid JSON ({e})") from e
        if not isinstance(kept, dict):
            raise OnnxFileError(f"{path}: metadata {META_KEY} must be a JSON object")
        spec = kept.get("model_spec")
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            meta["model_spec"]["name"] = spec["name"]
            inp = spec.get("input") or {}
            if isinstance(inp, dict) and inp.get("to") == meta["model_spec"]["input"]["to"]:
                meta["model_spec"]["input"] = inp     # the run's resize or pad still applies
        meta.update({k: kept[k] for k in ("dataset", "classes", "normalize") if k in kept})
    return model, meta


__all__ = ["META_KEY", "export_metadata", "load_for_evaluation"]
