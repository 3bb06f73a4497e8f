"""Seeing inside the network: the notes' visualisation and understanding methods.

Every method is a function that returns arrays; a ``plot_*`` twin writes a PNG.
This package sits on top of the library: nothing in ``cnnlab`` below it imports it.
"""
