"""The method itself is plain PyTorch."""

import subprocess
import sys


def test_core_imports_without_openmmlab():
    # Emulate an environment without OpenMMLab.
    code = (
        'import importlib.util, sys\n'
        'real = importlib.util.find_spec\n'
        'importlib.util.find_spec = lambda n, *a: None if n.split(".")[0] in '
        '("mmengine", "mmcv", "mmdet", "mmpretrain") else real(n, *a)\n'
        'class Block:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        '        if name.split(".")[0] in ("mmengine", "mmcv", "mmdet", "mmpretrain"):\n'
        '            raise ImportError(name)\n'
        'sys.meta_path.insert(0, Block())\n'
        'import mokd_mm.core\n'
        'from mokd_mm.core import CAGrad, IndefiniteSubspaceConnector, MoKDAmortized\n'
        'assert not any(m.startswith("mmengine") for m in sys.modules)\n'
    )
    subprocess.run([sys.executable, '-c', code], check=True)
