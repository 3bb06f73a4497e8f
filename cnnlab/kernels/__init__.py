"""Pure NumPy kernels: ndarrays in, ndarrays out, forward and backward side by side.

Nothing here knows about Tensors or autograd; :mod:`cnnlab.autograd.nn_ops`
adapts these kernels to the graph.
"""
