import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def fused_neuron_extension() -> dict:
    """``ext_modules`` / ``cmdclass`` of the fused multi-step neurons (snn_det.neurons._C).

    A C++ extension built against the installed torch (``pip install
    --no-build-isolation -e .``, as tools/setup_env.sh does).  Without torch or a
    compiler the package installs without it and the neurons run their Python step
    loop.  No -ffast-math, no FMA contraction: spikes must equal the Python loop's
    bit for bit.
    """
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return {}

    class OptionalBuildExt(BuildExtension):
        failed = ()

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as e:  # noqa: BLE001 - the Python loop is the fallback
                print(f'WARNING: {ext.name} not built ({e}); the neurons run their '
                      'Python step loop')
                self.failed += (ext,)

        def build_extensions(self):
            super().build_extensions()
            self.extensions = [e for e in self.extensions if e not in self.failed]

    flags = ['-O3', '-fopenmp', '-fno-fast-math', '-ffp-contract=off', '-Wno-psabi']
    ext = CppExtension('snn_det.neurons._C', ['snn_det/neurons/csrc/fused_steps.cpp',
                                                'snn_det/neurons/csrc/mmse.cpp',
                                                'snn_det/neurons/csrc/spike_codes.cpp'],
                       depends=['snn_det/neurons/csrc/common.h'],
                       extra_compile_args={'cxx': flags}, extra_link_args=['-fopenmp'])
    return dict(ext_modules=[ext], cmdclass={'build_ext': OptionalBuildExt.with_options(
        use_ninja=False)})


def requirements(name: str) -> list:
    """The requirement lines of ``requirements/<name>.txt`` (comments dropped)."""
    with open(os.path.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def version():
    ns = {}
    with open(os.path.join(HERE, 'snn_det', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


setup(
    name='snn-det',
    version=version(),
    description='Detection-first ANN-to-SNN conversion suite built on MMDetection',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['snn_det', 'snn_det.*']),
    python_requires='>=3.9',
    install_requires=requirements('runtime'),
    extras_require=dict(tests=requirements('tests')),
    license='Apache-2.0',
    **fused_neuron_extension(),
)
