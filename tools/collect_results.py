"""Regenerate docs/results/ and the generated blocks of the docs from the results files.

    python tools/collect_results.py [--benchmarks NAME ...] [--fresh work_dirs/benchmarks]
        [--replace] [--check]

The committed ``docs/results/<name>/results.json`` files are the source of truth.  A
rerun's ``work_dirs/benchmarks/<name>/results.json`` replaces the committed rows of the
same detector, method and T and keeps every other row (``--replace``: the fresh file as it
is); a benchmark not rerun is never dropped.  Then, from all the results files:

``docs/results/<name>/results.{json,csv,md}`` (plots of fresh rows), the index
``docs/results/README.md``, and every block between ``<!-- NAME:start -->`` /
``<!-- NAME:end -->`` markers in README.md (which must have ``results``) and docs/*.md
(:mod:`snn_det.analysis.docs_blocks`).  Files are written atomically, only if changed;
``--check`` writes nothing and exits 1 if a generated file is out of date.
"""
import argparse
import glob
import json
import os.path as osp
import shutil
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from snn_det.analysis.docs_blocks import blocks, fill_blocks, results_index  # noqa: E402
from snn_det.analysis.results import (display_path, merge_results, results_csv,  # noqa
                                      results_markdown, write_plots)
from snn_det.utils.checkpoint import atomic_output, write_text_atomic  # noqa: E402

START = '<!-- results:start -->'


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _results_in(folder: str) -> dict:
    return {osp.basename(osp.dirname(p)): p
            for p in sorted(glob.glob(osp.join(folder, '*', 'results.json')))}


def _copy_atomic(src: str, dst: str) -> None:
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)


def _merge_fresh(results, fresh, docs, replace, check, texts) -> list:
    """Takes the fresh results into ``results``; returns the plots to copy."""
    copies = []
    for name, path in fresh.items():
        new = _load(path)
        merged = new if replace or name not in results else merge_results(results[name], new)
        results[name] = merged
        out = osp.join(docs, name)
        texts[osp.join(out, 'results.json')] = json.dumps(merged, indent=2)
        texts[osp.join(out, 'results.csv')] = results_csv(merged)
        if not check:               # plots first: the tables link the plots that exist
            write_plots(merged, out)
        copies += [(f, osp.join(out, osp.basename(f)))
                   for f in sorted(glob.glob(osp.join(osp.dirname(path), '*_layer_error_*')))]
    return copies


def _doc_pages(root: str, made: dict, texts: dict) -> None:
    """README.md (which must have the results block) and every docs/*.md with a block."""
    readme = osp.join(root, 'README.md')
    for path in [readme] + sorted(glob.glob(osp.join(root, 'docs', '*.md'))):
        with open(path) as f:
            text = f.read()
        if path == readme and START not in text:
            raise SystemExit(f'error: {path} has no {START} marker')
        new = fill_blocks(text, made, path)
        if new != text:
            texts[path] = new


def collect(root: str = ROOT, fresh_root: str = None, only=None, replace: bool = False,
            check: bool = False) -> list:
    """Returns the paths that were (``check``: would be) rewritten."""
    docs = osp.join(root, 'docs', 'results')
    fresh_root = fresh_root or osp.join(root, 'work_dirs', 'benchmarks')
    committed = _results_in(docs)
    fresh = _results_in(fresh_root) if osp.isdir(fresh_root) else {}
    if only:
        unknown = [n for n in only if n not in fresh and n not in committed]
        if unknown:
            raise SystemExit(f'error: no results for {unknown} in {docs} or {fresh_root}')
        fresh = {k: v for k, v in fresh.items() if k in only}
    results = {name: _load(path) for name, path in committed.items()}
    # memory / time benchmarks (tools/scale_benchmark.py, tools/speed_benchmark.py) keep
    # their own results.md; they are summarised, not tabulated here
    resources = {n: r for n, r in results.items() if 'results' not in r}
    results = {n: r for n, r in results.items() if 'results' in r}
    fresh = {n: p for n, p in fresh.items() if n not in resources}
    texts = {}
    for name, result in results.items():     # no absolute paths of the machine that ran it
        if osp.isabs(result.get('config', '')):
            result['config'] = display_path(result['config'], root)
            texts[osp.join(docs, name, 'results.json')] = json.dumps(result, indent=2)
    copies = _merge_fresh(results, fresh, docs, replace, check, texts)
    if not check:                   # plots in place before the tables that link them
        for src, dst in copies:
            _copy_atomic(src, dst)
    results = dict(sorted(results.items()))
    for name, result in results.items():
        out = osp.join(docs, name)
        texts[osp.join(out, 'results.md')] = results_markdown(result, out, root=root)
    texts[osp.join(docs, 'README.md')] = results_index(results, resources, root)
    _doc_pages(root, blocks(results, resources), texts)
    changed = []
    for path, text in texts.items():
        old = open(path).read() if osp.isfile(path) else None
        if old != text:
            changed.append(path)
            if not check:
                write_text_atomic(text, path)
    return changed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--benchmarks', nargs='+', help='take fresh results of these only')
    p.add_argument('--fresh', default=osp.join(ROOT, 'work_dirs', 'benchmarks'),
                   help='where tools/benchmark.py wrote its results')
    p.add_argument('--replace', action='store_true', help='take fresh files as they are')
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 if a generated file is out of date')
    args = p.parse_args(argv)
    changed = collect(ROOT, args.fresh, args.benchmarks, args.replace, args.check)
    for path in changed:
        print(('out of date: ' if args.check else 'wrote ') + osp.relpath(path, ROOT))
    if args.check and changed:
        sys.exit(1)
    if not changed:
        print('results: up to date')


if __name__ == '__main__':
    main()
