"""Real aerial images: the NEON tree-crown photographs shipped in the ``deepforest`` wheel.

The ``deepforest`` 2.1.0 wheel on PyPI (MIT licence; the NEON airborne imagery is
public) holds under ``deepforest/data/`` RGB orthophotos (0.1 m per pixel) with
hand-drawn tree-crown boxes in Pascal VOC XML.  :func:`build_neon_trees_data`
turns them into a one-class (``tree``) COCO detection dataset::

    meta.json                                   parameters, counts, wheel sha256, checksum
    annotations/instances_{train,test,test_whole}.json
    train/<image>_<x0>_<y0>.png                 tiles of the training image(s)
    test/<image>_<x0>_<y0>.png                  tiles of the held-out images
    test_whole/<image>.png                      the held-out images, whole

* ``train``: ``tile`` x ``tile`` crops (400 px) of ``2019_YELL_2_528000_4978000_image_crop2``
  (2299 x 2472 px, 574 crowns), neighbouring tiles overlapping by ``train_overlap`` px.
* ``test``: the held-out images ``2019_YELL_2_541000_4977000_image_crop`` (1249 x 1035),
  ``OSBS_029`` and ``SOAP_061`` (400 x 400 each: one tile) cut into the fewest tiles that
  cover them (``test_overlap`` px at least, 0 by default), so each crown is scored
  about once.  ``test_whole``: the same three images uncut.  No image of the test splits
  is ever used for training, calibration or model selection; there is no val split
  (the training schedule is fixed and its last epoch is taken).
* Tiles are spread evenly from edge to edge; an image side shorter than ``tile`` gives a
  tile of that side.  A box crossing a tile edge is clipped; it is kept when at least
  ``min_inside`` (50 %) of its area lies inside the tile, otherwise written as an
  ``iscrowd=1`` (ignored) region: a detection of a crown cut by the tile edge is then
  neither a hit nor a false positive (pycocotools), and mmdet's training drops it.
* Every object name is mapped to the one class ``tree`` (SOAP's ``Alive`` / ``Dead``
  included); the source names are counted in ``meta.json``.
* VOC box numbers are taken as pixel-edge coordinates ``(xmin, ymin, xmax, ymax)``, as
  deepforest reads them (no 1-based shift).  COCO ``bbox`` is ``[x, y, w, h]``,
  ``area`` is ``w * h``, category id 1; each image entry also names its ``source`` image
  and tile origin ``x0``, ``y0``.

The same builder reads a user's own folder of images and VOC XML files (``src`` a
directory; ``test_images`` names the held-out ones).  Bad input (a missing or corrupt
wheel, an unreadable image or XML) raises :class:`NeonTreesError` with a one-line message
naming the file and the fix; the tree is built in a hidden sibling directory and moved
into place at the end, so nothing half-written is left at ``out_dir``.
Only numpy and Pillow are needed.

Longer than most modules (~400 lines): fetching and checking the wheel, tiling and
clipping boxes, and writing the splits are one transaction (nothing half-written under
``data/``), kept in one file so the clean-up covers every step.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image

from .synthetic import dataset_checksum

BUILDER_VERSION = '1'
PACKAGE, PACKAGE_VERSION = 'deepforest', '2.1.0'
WHEEL_NAME = f'{PACKAGE}-{PACKAGE_VERSION}-py3-none-any.whl'
WHEEL_SHA256 = '8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54'
WHEEL_DATA = 'deepforest/data/'
NEON_TREES_CLASSES: tuple[str, ...] = ('tree',)
TRAIN_IMAGES: tuple[str, ...] = ('2019_YELL_2_528000_4978000_image_crop2',)
TEST_IMAGES: tuple[str, ...] = ('2019_YELL_2_541000_4977000_image_crop', 'OSBS_029', 'SOAP_061')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
META_FILE = 'meta.json'
SPLITS = ('train', 'test', 'test_whole')


class NeonTreesError(ValueError):
    """Bad input for the tree-crown dataset (one line: the file, the cause, the fix)."""


class SourceImage(NamedTuple):
    """One annotated photograph: ``boxes`` (N, 4) pixel-edge ``x1, y1, x2, y2``."""
    name: str
    image: np.ndarray        # (H, W, 3) uint8 RGB
    boxes: np.ndarray        # (N, 4) float64
    labels: tuple            # N source object names


def download_hint(cache_dir: str | os.PathLike | None = None) -> str:
    """The command that puts the wheel where :func:`fetch_wheel` looks."""
    return (f'pip download --no-deps {PACKAGE}=={PACKAGE_VERSION} -d '
            f'{default_wheel_dir() if cache_dir is None else cache_dir}')


def default_wheel_dir() -> Path:
    """``$SNN_DET_CACHE/wheels`` (default ``~/.cache/snn-det/wheels``), as for mmcv."""
    return Path(os.environ.get('SNN_DET_CACHE', Path.home() / '.cache' / 'snn-det')) / 'wheels'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(cache_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the cached deepforest wheel, downloading it with pip when absent.

    The cached file must have the sha256 of the PyPI wheel; a different one is an error
    (never silently replaced), as is a failed download.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_wheel_dir()
    wheel = cache / WHEEL_NAME
    if not wheel.is_file() and download:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix='.deepforest-', dir=cache) as tmp:
            proc = subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
                                   f'{PACKAGE}=={PACKAGE_VERSION}', '-d', tmp],
                                  capture_output=True, text=True)
            got = Path(tmp) / WHEEL_NAME
            if proc.returncode != 0 or not got.is_file():
                last = (proc.stderr.strip().splitlines() or ['no wheel written'])[-1]
                raise NeonTreesError(f'could not download {PACKAGE}=={PACKAGE_VERSION} '
                                     f'({last.strip()}); fetch it by hand: '
                                     f'{download_hint(cache)}')
            os.replace(got, wheel)
    if not wheel.is_file():
        raise NeonTreesError(f'{wheel} is missing; fetch it: {download_hint(cache)}')
    if _sha256(wheel) != WHEEL_SHA256:
        raise NeonTreesError(f'{wheel} is not the PyPI {PACKAGE} {PACKAGE_VERSION} wheel '
                             f'(sha256 differs: corrupt or partial download); delete it and '
                             f'run: {download_hint(cache)}')
    return wheel


def _decode_image(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return np.asarray(img.convert('RGB'))
    except Exception as e:  # PIL raises several types for bad files
        raise NeonTreesError(f'{where}: unreadable image ({type(e).__name__}: '
                             f'{str(e).splitlines()[0] if str(e) else "no detail"})') from None


def parse_voc(data: bytes, where: str, shape: tuple | None = None) -> tuple[np.ndarray, tuple]:
    """Boxes ``(N, 4)`` and object names of one Pascal VOC XML document.

    ``shape`` ``(H, W)``: the image's size, checked against ``<size>`` and used to clip
    the boxes.  A malformed document or box is a :class:`NeonTreesError` naming ``where``.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise NeonTreesError(f'{where}: not valid XML ({e})') from None
    if root.tag != 'annotation':
        raise NeonTreesError(f'{where}: not a Pascal VOC file (root <{root.tag}>, '
                             'expected <annotation>)')
    size = root.find('size')
    if shape is not None and size is not None:
        try:
            w, h = int(size.findtext('width')), int(size.findtext('height'))
        except (TypeError, ValueError):
            w = h = None
        if w is not None and (w, h) != (shape[1], shape[0]):
            raise NeonTreesError(f'{where}: <size> {w} x {h} differs from the image '
                                 f'({shape[1]} x {shape[0]})')
    boxes, labels = [], []
    for i, obj in enumerate(root.iter('object')):
        box = obj.find('bndbox')
        try:
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        except (AttributeError, TypeError, ValueError):
            raise NeonTreesError(f'{where}: object {i} has no numeric '
                                 '<bndbox> xmin/ymin/xmax/ymax') from None
        if shape is not None:
            x1, x2 = np.clip([x1, x2], 0, shape[1])
            y1, y2 = np.clip([y1, y2], 0, shape[0])
        if not (x2 > x1 and y2 > y1):
            raise NeonTreesError(f'{where}: object {i} has an empty box '
                                 f'({x1:g}, {y1:g}, {x2:g}, {y2:g}) inside the image')
        boxes.append((x1, y1, x2, y2))
        labels.append((obj.findtext('name') or '').strip())
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), tuple(labels)


def read_wheel(wheel: str | os.PathLike, names: Sequence[str]) -> list[SourceImage]:
    """Read ``deepforest/data/<name>.png`` + ``.xml`` for each name from the wheel."""
    hint = f'download it again: {download_hint(Path(wheel).parent)}'
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise NeonTreesError(f'{wheel}: not a readable {PACKAGE} wheel '
                             f'({type(e).__name__}); {hint}') from None
    out = []
    with zf:
        members = set(zf.namelist())
        for name in names:
            raw = {}
            for ext in ('.png', '.xml'):
                member = WHEEL_DATA + name + ext
                if member not in members:
                    raise NeonTreesError(f'{wheel}: {member} is missing (not the '
                                         f'{PACKAGE} {PACKAGE_VERSION} wheel?); {hint}')
                try:
                    raw[ext] = zf.read(member)
                except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as e:
                    raise NeonTreesError(f'{wheel}: {member} is corrupt ({e}); {hint}') \
                        from None
            image = _decode_image(raw['.png'], f'{wheel}:{WHEEL_DATA}{name}.png')
            boxes, labels = parse_voc(raw['.xml'], f'{wheel}:{WHEEL_DATA}{name}.xml',
                                      image.shape[:2])
            out.append(SourceImage(name, image, boxes, labels))
    return out


def read_voc_folder(folder: str | os.PathLike) -> list[SourceImage]:
    """Every ``<name>.xml`` of a folder with its image ``<name>.{png,jpg,tif,...}``."""
    folder = Path(folder)
    xmls = sorted(folder.glob('*.xml'))
    if not xmls:
        raise NeonTreesError(f'{folder}: no Pascal VOC *.xml files (expected <name>.xml '
                             'beside each image <name>.png/.jpg/.tif)')
    out = []
    for xml in xmls:
        images = [xml.with_suffix(s) for s in IMAGE_SUFFIXES + tuple(s.upper()
                                                                   for s in IMAGE_SUFFIXES)]
        image_path = next((p for p in images if p.is_file()), None)
        if image_path is None:
            raise NeonTreesError(f'{xml}: no image {xml.stem}.png/.jpg/.tif beside it')
        image = _decode_image(image_path.read_bytes(), str(image_path))
        boxes, labels = parse_voc(xml.read_bytes(), str(xml), image.shape[:2])
        out.append(SourceImage(xml.stem, image, boxes, labels))
    return out


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the fewest ``tile``-long windows covering ``[0, length)`` with
    neighbours overlapping by at least ``overlap``, spread evenly from edge to edge."""
    if not 0 <= overlap < tile:
        raise NeonTreesError(f'tile overlap must be in [0, {tile}), got {overlap}')
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def crop_boxes(boxes: np.ndarray, x0: int, y0: int, w: int, h: int,
               min_inside: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of the window ``(x0, y0, w, h)`` in its coordinates, clipped to it, and a
    flag per box: ``True`` when at least ``min_inside`` of its area is inside (kept),
    ``False`` for a smaller part (an ignored region).  Boxes outside are dropped."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0, bool)
    shifted = boxes - np.array([x0, y0, x0, y0], dtype=np.float64)
    clipped = np.stack([np.clip(shifted[:, 0], 0, w), np.clip(shifted[:, 1], 0, h),
                        np.clip(shifted[:, 2], 0, w), np.clip(shifted[:, 3], 0, h)], 1)
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    present = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    keep = inside >= min_inside * area - 1e-9
    return clipped[present], keep[present]


def _coco(images: list, annotations: list) -> dict:
    return dict(info=dict(description=f'NEON tree crowns from the {PACKAGE} '
                                      f'{PACKAGE_VERSION} wheel (snn_det)',
                          version=BUILDER_VERSION),
                licenses=[dict(name='MIT (deepforest); NEON data: public')],
                images=images, annotations=annotations,
                categories=[dict(id=1, name='tree', supercategory='plant')])


def _write_split(root: Path, split: str, sources: list[SourceImage], tile: int | None,
                 overlap: int, min_inside: float) -> dict:
    """Write one split's image files and COCO json; ``tile=None``: whole images."""
    (root / split).mkdir()
    images, annotations = [], []
    for src in sources:
        height, width = src.image.shape[:2]
        xs = [0] if tile is None else tile_origins(width, tile, overlap)
        ys = [0] if tile is None else tile_origins(height, tile, overlap)
        tw, th = (width, height) if tile is None else (min(tile, width), min(tile, height))
        for y0 in ys:
            for x0 in xs:
                file_name = (f'{src.name}.png' if tile is None
                             else f'{src.name}_{x0:04d}_{y0:04d}.png')
                Image.fromarray(src.image[y0:y0 + th, x0:x0 + tw]).save(
                    root / split / file_name, format='PNG')
                image_id = len(images) + 1
                images.append(dict(id=image_id, file_name=file_name, width=tw, height=th,
                                   source=src.name, x0=x0, y0=y0))
                boxes, kept = crop_boxes(src.boxes, x0, y0, tw, th, min_inside)
                for (x1, y1, x2, y2), k in zip(boxes.tolist(), kept.tolist()):
                    w, h = x2 - x1, y2 - y1
                    annotations.append(dict(
                        id=len(annotations) + 1, image_id=image_id, category_id=1,
                        bbox=[x1, y1, w, h], area=w * h, iscrowd=int(not k),
                        segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    (root / 'annotations' / f'instances_{split}.json').write_text(
        json.dumps(_coco(images, annotations), separators=(',', ':')) + '\n')
    return dict(images=len(images), boxes=sum(1 for a in annotations if not a['iscrowd']),
                ignored=sum(1 for a in annotations if a['iscrowd']),
                sources=[s.name for s in sources])


def _read_meta(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / META_FILE).read_text())
    except (OSError, ValueError):
        return None


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``staging`` tree (two renames)."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.old-', dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_neon_trees_data(out_dir: str | os.PathLike = 'data/neon_trees',
                          src: str | os.PathLike | None = None,
                          test_images: Sequence[str] | None = None, tile: int = 400,
                          train_overlap: int = 200, test_overlap: int = 0,
                          min_inside: float = 0.5, cache_dir: str | os.PathLike | None = None,
                          force: bool = False) -> tuple[dict, bool]:
    """Build the tree-crown COCO dataset under ``out_dir`` unless already up to date.

    ``src``: ``None`` (the cached deepforest wheel, downloaded when absent), a wheel file,
    or a folder of images + VOC XML.  ``test_images``: names held out (default: the three
    of :data:`TEST_IMAGES` for a wheel; required for a folder, whose other images train).
    Up to date means ``meta.json`` records the same parameters, source sha256 and
    builder version and the files still hash to its checksum.  Returns ``(meta, built)``.
    """
    out_dir = Path(out_dir)
    if not 0 < min_inside <= 1:
        raise NeonTreesError(f'min_inside must be in (0, 1], got {min_inside}')
    folder = src is not None and Path(src).is_dir()
    if src is None:
        src_path = fetch_wheel(cache_dir)
    elif not Path(src).exists():
        raise NeonTreesError(f'{src} does not exist (give the {PACKAGE} wheel or a folder of '
                             f'images + VOC XML; fetch the wheel: {download_hint()})')
    else:
        src_path = Path(src)
    if folder and not test_images:
        raise NeonTreesError(f'{src}: name the held-out images of a folder (test_images / '
                             '--test-images NAME,...)')
    test = tuple(test_images) if test_images else TEST_IMAGES
    params = dict(source=src_path.name, tile=tile, train_overlap=train_overlap,
                  test_overlap=test_overlap, min_inside=min_inside, test_images=list(test))
    source_sha = ('folder' if folder else _sha256(src_path))
    meta = _read_meta(out_dir)
    if (not force and not folder and meta is not None
            and meta.get('builder_version') == BUILDER_VERSION and meta.get('params') == params
            and meta.get('source_sha256') == source_sha
            and meta.get('checksum') == dataset_checksum(out_dir)):
        return meta, False
    if folder:
        sources = read_voc_folder(src_path)
    else:
        sources = read_wheel(src_path, TRAIN_IMAGES + tuple(n for n in test
                                                            if n not in TRAIN_IMAGES))
    names = [s.name for s in sources]
    missing = [n for n in test if n not in names]
    if missing:
        raise NeonTreesError(f'{src_path}: held-out images {missing} not found (it has '
                             f'{names})')
    train = [s for s in sources if s.name not in test]
    held_out = [s for s in sources if s.name in test]
    if not train:
        raise NeonTreesError(f'{src_path}: every image is held out; nothing to train on')
    labels: dict[str, int] = {}
    for s in sources:
        for name in s.labels:
            labels[name] = labels.get(name, 0) + 1
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.build-', dir=out_dir.parent))
    try:
        (staging / 'annotations').mkdir()
        splits = dict(
            train=_write_split(staging, 'train', train, tile, train_overlap, min_inside),
            test=_write_split(staging, 'test', held_out, tile, test_overlap, min_inside),
            test_whole=_write_split(staging, 'test_whole', held_out, None, 0, min_inside))
        meta = dict(builder_version=BUILDER_VERSION, params=params, source_sha256=source_sha,
                    classes=list(NEON_TREES_CLASSES), source_labels=labels,
                    source_images={s.name: dict(width=s.image.shape[1],
                                                height=s.image.shape[0], boxes=len(s.boxes))
                                   for s in sources},
                    splits=splits, checksum=dataset_checksum(staging))
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + '\n')
        _swap_in(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return meta, True
