"""Pure NumPy kernels: ndarrays in, ndarrays out, forward and backward side by side.

Nothing here knows about Tensors or autograd; the ``*_ops`` modules of :mod:`cnnlab.autograd`
adapts these kernels to the graph.
"""
