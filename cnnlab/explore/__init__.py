"""``cnnlab explore``: an interactive page on a trained model, driven by the real engine.

Draw a digit, upload an image or pick a test image, and see the input as the network
receives it, every layer's feature maps, the FC activations and the class
probabilities; hover a unit for the arithmetic it did.  The parts:

* :mod:`cnnlab.explore.session` -- :class:`Explorer`: the model, its layers, a forward
  with every layer's output (knows nothing about HTTP);
* :mod:`cnnlab.explore.units` -- one unit's infobox (patch, filter, dot product, pooling window);
* :mod:`cnnlab.explore.api` -- what a request may carry, checked before decoding;
* :mod:`cnnlab.explore.server` -- the Starlette app and the uvicorn server;
* ``static/`` -- the page (plain JavaScript, nothing loaded from outside).

Explore sits on top of viz and training; nothing in cnnlab imports it.
"""
from __future__ import annotations

__all__ = ["Explorer", "create_app", "serve"]


def __getattr__(name: str):
    if name == "Explorer":
        from cnnlab.explore.session import Explorer
        return Explorer
    if name in ("create_app", "serve"):
        from cnnlab.explore import server
        return getattr(server, name)
    raise AttributeError(name)
