from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('mokd_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


# What the package imports, with the ranges it is tested on
# (requirements/*.txt pin the exact versions of the tested environment).
# mmcv is not here, as in mmdet's and mmpretrain's own setups: PyPI has only
# its source, whose build needs torch and takes many minutes; install it with
# `mim install "mmcv==2.1.0"` (or tools/setup_env.sh). `import mokd_mm` says
# so when it is missing.
INSTALL_REQUIRES = [
    'torch>=2.0',
    'numpy',
    'scipy',
    'opencv-python',
    'pycocotools>=2.0.7',
    'mmengine>=0.10.7,<0.11',
    'mmdet>=3.3.0,<3.4',
    'mmpretrain>=1.2.0,<1.3',
    'timm>=1.0',
]
EXTRAS_REQUIRE = {
    # TorchJDBalancer: TorchJD's aggregators, Nash-MTL (cvxpy, ECOS) and UPGrad (quadprog).
    'torchjd': ['torchjd[nash_mtl,quadprog_projector]>=0.18,<0.19'],
    # TensorboardVisBackend for the MoKD scalars.
    'tensorboard': ['tensorboard'],
}

setup(
    name='mokd_mm',
    version=read_version(),
    description='MoKD (Multi-Task Optimization for Knowledge Distillation) '
    'for MMDetection and MMPretrain',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license='Apache License 2.0',
)
