"""MoKD for OpenMMLab.

``import mokd_mm`` (or ``custom_imports=dict(imports=['mokd_mm'])``)
registers every component in the OpenMMLab registries. The method itself,
``mokd_mm.core``, is plain PyTorch and imports without OpenMMLab.
"""

import importlib.util

from .version import __version__

if importlib.util.find_spec('mmengine') is not None:
    from . import checkpoint, engine, mmcv_fallback, models  # noqa: F401  (registration)

    mmcv_fallback.install()

__all__ = ['__version__']
