"""mokd_mm's own registry: ``BALANCERS``, the loss balancers a
``MoKDOptimWrapper`` config picks with ``balancer=dict(type=...)``.

Every rule of :mod:`mokd_mm.core.balancers` is registered under its class
name when ``mokd_mm.engine`` is imported.
"""

from mmengine.registry import Registry

BALANCERS = Registry('balancer', locations=['mokd_mm.engine'])
