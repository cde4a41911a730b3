from setuptools import find_packages, setup


def version():
    ns = {}
    with open('snn_det/version.py') as f:
        exec(f.read(), ns)
    return ns['__version__']


setup(
    name='snn-det',
    version=version(),
    description='Detection-first ANN-to-SNN conversion suite built on MMDetection',
    long_description=open('README.md').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['snn_det', 'snn_det.*']),
    python_requires='>=3.9',
    install_requires=['torch', 'mmengine>=0.10', 'mmcv>=2.0.0rc4,<2.2.0', 'mmdet>=3.0',
                      'pycocotools', 'matplotlib', 'numpy'],
    license='Apache-2.0',
)
