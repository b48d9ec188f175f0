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


def test_an_incomplete_openmmlab_stack_is_named_with_how_to_install_it():
    code = (
        'import importlib.util\n'
        'real = importlib.util.find_spec\n'
        'importlib.util.find_spec = lambda n, *a: None if n in ("mmcv", "mmpretrain") '
        'else real(n, *a)\n'
        'import mokd_mm\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'lacks mmcv, mmpretrain: mim install "mmcv==2.1.0"' in result.stderr
    assert 'pip install "mmpretrain>=1.2.0,<1.3"' in result.stderr


def test_setup_declares_what_the_package_imports():
    """Every third-party module the package imports is a requirement of
    setup.py (or mmcv, which mim installs, or an extra)."""
    import ast
    import os
    import re

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    requirements = []
    for node in ast.parse(open(os.path.join(repo, 'setup.py')).read()).body:
        if isinstance(node, ast.Assign) and node.targets[0].id in (
            'INSTALL_REQUIRES',
            'EXTRAS_REQUIRE',
        ):
            value = ast.literal_eval(node.value)
            requirements += value if isinstance(value, list) else sum(value.values(), [])
    declared = {re.split(r'[<>=\[ ]', req)[0].lower() for req in requirements}
    assert {'mmengine', 'mmdet', 'mmpretrain', 'scipy', 'timm', 'torchjd'} <= declared
    module_names = {'cv2': 'opencv-python'}
    imported = set()
    for root, _, files in os.walk(os.path.join(repo, 'mokd_mm')):
        for name in files:
            if name.endswith('.py'):
                tree = ast.parse(open(os.path.join(root, name)).read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        imported |= {a.name.split('.')[0] for a in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        imported.add(node.module.split('.')[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != 'mokd_mm'}
    undeclared = {m for m in third_party if module_names.get(m, m) not in declared and m != 'mmcv'}
    assert not undeclared, undeclared
