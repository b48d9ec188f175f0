"""MoKD for OpenMMLab.

``import mokd_mm`` (or ``custom_imports=dict(imports=['mokd_mm'])``)
registers every component in the OpenMMLab registries. The method itself,
``mokd_mm.core``, is plain PyTorch and imports without OpenMMLab.
"""

import importlib.util

from .version import __version__

# The OpenMMLab stack mokd_mm's components register in, and how to get it.
STACK = {
    'mmengine': 'pip install "mmengine>=0.10.7,<0.11"',
    'mmcv': 'mim install "mmcv==2.1.0" (built with its ops; or bash tools/setup_env.sh)',
    'mmdet': 'pip install "mmdet>=3.3.0,<3.4"',
    'mmpretrain': 'pip install "mmpretrain>=1.2.0,<1.3"',
}

if importlib.util.find_spec('mmengine') is not None:
    _missing = [name for name in STACK if importlib.util.find_spec(name) is None]
    if _missing:
        raise ImportError(
            'mokd_mm registers its components in the OpenMMLab stack, which lacks '
            + ', '.join(_missing)
            + ': '
            + '; '.join(STACK[name] for name in _missing)
            + '. (Without mmengine at all, mokd_mm.core imports as plain PyTorch.)'
        )
    from . import checkpoint, engine, mmcv_fallback, models  # noqa: F401  (registration)

    mmcv_fallback.install()

__all__ = ['__version__']
