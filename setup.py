from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('mokd_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mokd_mm',
    version=read_version(),
    description='MoKD (Multi-Task Optimization for Knowledge Distillation) '
    'for MMDetection and MMPretrain',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=['torch>=2.0'],
    license='Apache License 2.0',
)
