"""README.md and docs/*.md: short, free of commit ids, every link and command resolves, and
the generated blocks are current."""
import glob
import os.path as osp
import re

import pytest

from helpers import ROOT, load_tool

README = osp.join(ROOT, 'README.md')
PAGES = [README] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))
#: a commit id: 7-40 hex digits with at least one digit and one letter
COMMIT = re.compile(r'\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b')
LINK = re.compile(r'\]\(([^)\s]+)\)|\bsrc="([^"]+)"')
CODE_BLOCK = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)


def _text(path: str) -> str:
    with open(path) as f:
        return f.read()


def _rel(path: str) -> str:
    return osp.relpath(path, ROOT)


def test_the_readme_is_at_most_200_lines():
    assert len(_text(README).splitlines()) <= 200


@pytest.mark.parametrize('path', PAGES, ids=_rel)
def test_no_commit_ids_in_the_prose(path):
    """Which commit produced a number lives in the results files, not in the docs."""
    found = COMMIT.findall(_text(path))
    assert not found, f'{_rel(path)} names commits {found}'


def test_the_commit_id_pattern_finds_ids_and_spares_words():
    assert COMMIT.findall('measured with 05e42cf893 (and 7cee18f)') == ['05e42cf893', '7cee18f']
    assert COMMIT.findall('deadbeef 1234567 accessed effaced 2026-12-06 channels') == []


def _links(path: str):
    text = CODE_BLOCK.sub('', _text(path))         # code blocks hold no links
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if not re.match(r'[a-z]+:', target) and not target.startswith('#'):
            yield target.split('#')[0]


@pytest.mark.parametrize('path', PAGES, ids=_rel)
def test_every_relative_link_resolves_to_a_file(path):
    missing = [t for t in _links(path)
               if t and not osp.exists(osp.normpath(osp.join(osp.dirname(path), t)))]
    assert not missing, f'{_rel(path)} links to missing {missing}'


def _tool_source(script: str) -> str:
    """The script and the snn_det modules it imports (where shared options live)."""
    text = _text(script)
    for mod in re.findall(r'^from (snn_det[\w.]*) import', text, re.M):
        base = osp.join(ROOT, *mod.split('.'))
        for f in (base + '.py', osp.join(base, '__init__.py')):
            if osp.isfile(f):
                text += _text(f)
    return text


def _commands(path: str):
    """``(script, [--options])`` of every ``tools/*.py`` command in the code blocks."""
    for block in CODE_BLOCK.findall(_text(path)):
        for cmd in re.sub(r'\\\n', ' ', block).splitlines():
            m = re.search(r'\b(tools/[\w-]+\.(?:py|sh))\b(.*)', cmd)
            if m:
                yield m.group(1), re.findall(r'(?<!\S)(--[a-z][\w-]*)', m.group(2).split('#')[0])


def test_the_readme_shows_commands():
    assert {s for s, _ in _commands(README)} >= {'tools/setup_env.sh', 'tools/run_default.py',
                                                 'tools/convert.py', 'tools/test.py'}


@pytest.mark.parametrize('path', PAGES, ids=_rel)
def test_every_command_names_a_script_and_options_it_has(path):
    for script, options in _commands(path):
        full = osp.join(ROOT, script)
        assert osp.isfile(full), f'{_rel(path)}: {script} does not exist'
        source = _tool_source(full)
        unknown = [o for o in options if f"'{o}'" not in source]
        assert not unknown, f'{_rel(path)}: {script} has no option {unknown}'


def test_the_setup_and_test_commands_are_those_ci_runs():
    ci = _text(osp.join(ROOT, '.ci', 'run'))
    for cmd in ('tools/setup_env.sh', '.venv/bin/python -m pytest tests -q'):
        assert cmd in ci and cmd in _text(README)


def test_the_generated_blocks_are_current(tmp_path):
    """README.md's and the docs pages' generated blocks and docs/results are what
    tools/collect_results.py makes of the committed results files."""
    changed = load_tool('collect_results').collect(ROOT, fresh_root=str(tmp_path), check=True)
    assert changed == [], f'run python tools/collect_results.py: {changed} are out of date'
