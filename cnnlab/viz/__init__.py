"""Seeing inside the network: the notes' visualisation and understanding methods.

Every method is a function that returns arrays; a ``plot_*`` twin writes a PNG.
``cnnlab viz METHOD`` runs each one on a trained run, ``cnnlab report RUN`` puts
them on one self-contained HTML page.  This package sits on top of the library:
nothing in ``cnnlab`` below it imports it.

=====================  ===========================================================
module                 methods (the notes' section "理解CNN,可视化")
=====================  ===========================================================
``kernels``            images are matrices: classic kernels on a real photo
``maps``               activation maps per layer, dead-filter report
``filters``            first-layer and deeper filters, smoothness score
``topk``               maximally activating images cropped to the receptive field
``embedding``          t-SNE of CNN codes: scatter and image mosaic
``attribution``        occlusion, saliency, guided backprop, DeconvNet
``synthesis``          class-model visualisation, feature inversion
``adversarial``        FGSM and iterated FGSM, accuracy against epsilon
``training_plots``     curves, confusion matrix, misclassified images
``report``             the HTML report (its sections); ``page`` renders it with
                       ``report_template.html``
``inputs``             photos, image files, the run's input pipeline, checkpoint lookup
``cli``                ``cnnlab viz`` / ``cnnlab report``: each method registered once in
                       ``VIZ_METHODS``, its runner in ``commands/`` (one file per family)
=====================  ===========================================================
"""
from cnnlab.viz import (  # noqa: F401
                            adversarial,
                            attribution,
                            embedding,
                            filters,
                            image,
                            kernels,
                            maps,
                            report,
                            synthesis,
                            topk,
                            training_plots,
)
from cnnlab.viz.adversarial import *  # noqa: F401,F403
from cnnlab.viz.attribution import *  # noqa: F401,F403
from cnnlab.viz.embedding import *  # noqa: F401,F403
from cnnlab.viz.filters import *  # noqa: F401,F403
from cnnlab.viz.kernels import *  # noqa: F401,F403
from cnnlab.viz.maps import *  # noqa: F401,F403
from cnnlab.viz.report import *  # noqa: F401,F403
from cnnlab.viz.synthesis import *  # noqa: F401,F403
from cnnlab.viz.topk import *  # noqa: F401,F403
from cnnlab.viz.training_plots import *  # noqa: F401,F403

__all__ = [name for mod in (adversarial, attribution, embedding, filters, kernels, maps, report,
                            synthesis, topk, training_plots) for name in mod.__all__]
