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


def test_tools_are_thin_and_long_modules_say_why():
    """Every script in tools/ is a command-line layer of at most 150 lines; a library module
    over 360 lines states in its docstring why it is longer than most."""
    import ast
    import glob
    for path in glob.glob(osp.join(ROOT, 'tools', '*.py')):
        n = len(open(path).read().splitlines())
        assert n <= 150, f'{path}: {n} lines'
    for path in glob.glob(osp.join(ROOT, 'snn_det', '**', '*.py'), recursive=True):
        text = open(path).read()
        if len(text.splitlines()) > 360:
            doc = ast.get_docstring(ast.parse(text)) or ''
            assert 'Longer than most modules' in doc, f'{path}: no reason for its length'
