"""The runners behind ``cnnlab viz METHOD``, one file per family of methods.

Each runner takes a :class:`~cnnlab.viz.commands.context.VizContext` (the model, its
run, the parsed options and one input image), writes its PNGs through ``ctx.path``
and returns the one-line summary the command prints.  :data:`cnnlab.viz.cli.VIZ_METHODS`
registers each runner once, with its name, help and options.

==============  ============================================================
module          methods
==============  ============================================================
``context``     the context object and the layer / channel helpers they share
``features``    kernels, activations, dead-filters, filters, top-k, tsne
``attribution`` occlusion, saliency, guided, deconvnet
``synthesis``   class-model, invert, fgsm (images made by optimising the input)
``training``    curves, confusion, misclassified
==============  ============================================================
"""
