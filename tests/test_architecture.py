"""The package's layering (pyproject.toml, [tool.importlinter]): no module imports a
layer above its own, so no import cycle between layers either."""
import os.path as osp
import subprocess
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def test_the_layers_of_the_package_hold():
    lint = osp.join(osp.dirname(sys.executable), 'lint-imports')
    out = subprocess.run([lint, '--config', osp.join(ROOT, 'pyproject.toml'), '--no-cache'],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert 'Contracts: 1 kept, 0 broken.' in out.stdout
