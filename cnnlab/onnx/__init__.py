"""ONNX export and import.

* :func:`export` (``cnnlab export ... --format onnx``) writes a cnnlab model as an
  ONNX file that onnxruntime runs with the same outputs;
* :func:`load` reads an ONNX CNN (from cnnlab, ``torch.onnx.export``...) as an
  ordinary, trainable cnnlab Module.

Files: ``graph.py`` (the graph under construction), ``trace.py`` (running the model
and walking what it did), ``export_conv.py`` / ``export_pool.py`` /
``export_layers.py`` (one converter per layer, by family), ``export.py``,
``checks.py`` (untrusted files), ``layers.py`` (the modules an import builds),
``importer.py``; files are written by cnnlab's one atomic writer (``cnnlab/_files.py``).
Needs the ``onnx`` package
(``pip install 'cnnlab[onnx]'``), imported when a function runs.
"""
from cnnlab.onnx import layers  # noqa: F401  (the imported layers' export converters)
from cnnlab.onnx.checks import OnnxFileError
from cnnlab.onnx.export import export, to_onnx
from cnnlab.onnx.graph import ExportError
from cnnlab.onnx.importer import UnsupportedOperatorError, load
from cnnlab.onnx.layers import OnnxGraph

__all__ = ["ExportError", "OnnxFileError", "OnnxGraph", "UnsupportedOperatorError", "export",
           "load", "to_onnx"]
