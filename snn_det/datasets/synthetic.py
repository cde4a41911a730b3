"""Deterministic generated shape datasets: the embedded default data of snn_det.

Detection images show 1-8 objects of eight *shape* classes (colour is random and
carries no class information) on textured, noisy backgrounds with optional
unannotated clutter. Each image is drawn from its own RNG seeded with
``(seed, split_id, index)``, so the output is byte-identical for a given seed no
matter how many worker processes draw it.

Layout written under ``out_dir`` (see :func:`build_synthetic_data`)::

    meta.json                                   parameters, counts, checksum
    coco/annotations/instances_{train,val,test}.json
    coco/{train,val,test}/<split>_<index>.jpg
    VOCdevkit/VOC2007/JPEGImages/<split>_<index>.jpg   (hard links or copies)
    VOCdevkit/VOC2007/Annotations/<split>_<index>.xml
    VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt
    cls/{train,val}/<class_name>/<index>.png           (mmpretrain CustomDataset)
    cls/meta/{train,val}.txt

Annotation conventions:

* COCO ``bbox`` is ``[x, y, w, h]`` in pixel-edge coordinates, the tight box of
  the object's *visible* mask pixels; ``area`` is the box area ``w * h`` (the
  same quantity pycocotools uses for detections), ``segmentation`` is the box
  polygon and category ids start at 1.
* VOC boxes are the same boxes in VOC's 1-based inclusive pixel coordinates:
  ``xmin = x + 1``, ``xmax = x + w``.
* An object is only placed where it leaves every earlier object at least
  ``MIN_VISIBLE_FRACTION`` (40 %) visible; a candidate that would hide more of
  an earlier object is moved, and dropped from the image (not drawn) when no
  position works. So every drawn object is annotated and none is more than
  60 % occluded.
* Three detection splits: ``train`` (training, calibration), ``val`` (model
  selection and tuning) and ``test`` (held out, only reported; written when
  ``num_test > 0``, 400 images by default in :func:`build_synthetic_data`).  Each
  split draws from its own seeds ``(seed, split_id, index)``, so adding or
  resizing the test split leaves train and val byte-identical.
* VOC ``test.txt`` lists the test split (``val.txt``'s images when there is none)
  and ``trainval.txt`` is train + val, as in VOC.
* The classification folders are named after the classes, so mmpretrain's
  folder scan would order them alphabetically: use ``meta/<split>.txt`` with
  ``metainfo=dict(classes=SYNTH_CLASSES)`` to keep the label order.

Only numpy and Pillow are needed.

Longer than most modules (~550 lines) because the detection and classification
generators share their shape drawing, backgrounds and seeding; split, the byte-identity
of a seed's output would depend on two files staying in step.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

GENERATOR_VERSION = '1'
SYNTH_CLASSES: tuple[str, ...] = ('circle', 'square', 'triangle', 'star', 'cross',
                                  'ring', 'hexagon', 'crescent')
SYNTH_VOC_YEAR = 2007

SPLIT_IDS = {'train': 0, 'val': 1, 'cls_train': 2, 'cls_val': 3, 'test': 4, 'cls_test': 5}
IMAGE_SIDE_RANGE = (160, 320)          # inclusive, each side drawn independently
MAX_OBJECTS = 8
MIN_DIAMETER = 12.0                    # px, circumscribed circle of a shape
MAX_DIAMETER_FRACTION = 0.8            # of the shorter image side
MIN_VISIBLE_FRACTION = 0.4
PLACEMENT_TRIES = 6
CLUTTER_PROBABILITY = 0.4
MIN_COLOUR_DISTANCE = 80.0             # RGB distance of an object to its backdrop
COCO_SMALL, COCO_MEDIUM = 32 ** 2, 96 ** 2
JPEG_OPTIONS = dict(format='JPEG', quality=95, optimize=False, subsampling=0)
META_FILE = 'meta.json'


# ----------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------
def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Return an HxWx3 float32 background: a linear gradient mixed with 0-2 textures."""
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
    start, stop = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    canvas = start + ramp[..., None] * (stop - start)
    max_period = max(8.0, 0.15 * max(width, height))
    for _ in range(rng.integers(0, 3)):
        kind = rng.integers(3)
        weight = rng.uniform(0.2, 0.6)
        if kind == 2:  # smooth colour blobs: a coarse random grid upsampled
            cells = rng.integers(2, 9)
            grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
            texture = np.asarray(Image.fromarray(grid).resize(
                (width, height), Image.Resampling.BICUBIC), dtype=np.float32)
            canvas = canvas * (1 - weight) + texture * weight
            continue
        period = rng.uniform(4.0, max_period)
        if kind == 0:  # stripes, sine or square wave, any orientation
            phi = rng.uniform(0, math.pi)
            wave = np.sin((xs * math.cos(phi) + ys * math.sin(phi)) * (2 * math.pi / period))
            level = (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
        else:  # axis-aligned checkerboard
            level = ((xs // period + ys // period) % 2).astype(np.float32)
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        mix = (weight * level)[..., None]
        canvas = canvas * (1 - mix) + colour * mix
    return canvas


def _clutter(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Draw a few short lines and dots (never annotated) onto the background."""
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(rng.integers(3, 16)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:
            length, angle = rng.uniform(4, 30), rng.uniform(0, 2 * math.pi)
            end = (x + length * math.cos(angle), y + length * math.sin(angle))
            draw.line([(x, y), end], fill=colour, width=int(rng.integers(1, 3)))
        else:
            r = rng.uniform(1, 3)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return np.asarray(image, dtype=np.float32)


def _regular_polygon(count: int, phase: float = -math.pi / 2) -> np.ndarray:
    """Vertices of a regular ``count``-gon on the unit circle."""
    angles = phase + np.arange(count) * (2 * math.pi / count)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _unit_polygon(rng: np.random.Generator, name: str) -> np.ndarray:
    """Return the unit-radius outline (Nx2) of a polygonal class before rotation."""
    if name == 'square':
        return _regular_polygon(4, math.pi / 4) * [rng.uniform(0.8, 1.0), 1.0]
    if name == 'triangle':
        return _regular_polygon(3) * [rng.uniform(0.8, 1.0), 1.0]
    if name == 'hexagon':
        return _regular_polygon(6) * [rng.uniform(0.85, 1.0), 1.0]
    if name == 'star':
        points = _regular_polygon(10)
        points[1::2] *= rng.uniform(0.38, 0.5)
        return points
    # cross: a plus sign with arm half-width ``a``, scaled to unit radius; its
    # outline is one quarter (as complex numbers) turned clockwise 4 times
    a = rng.uniform(0.2, 0.3)
    quarter = np.array([a + 1j, a + a * 1j, 1 + a * 1j])
    points = np.concatenate([quarter * (-1j) ** k for k in range(4)]) / abs(1 + a * 1j)
    return np.stack([points.real, points.imag], axis=1)


def _shape_alpha(rng: np.random.Generator, label: int, diameter: float,
                 supersample: int) -> np.ndarray:
    """Render one shape as a float32 alpha map cropped to its support.

    The shape is drawn ``supersample`` times larger and box-filtered down, so the
    alpha has anti-aliased edges; the object's mask is ``alpha >= 0.5``.
    """
    name = SYNTH_CLASSES[label]
    side = int(math.ceil(diameter)) + 2
    big = side * supersample
    image = Image.new('L', (big, big), 0)
    draw = ImageDraw.Draw(image)
    centre, radius = big / 2, diameter * supersample / 2
    theta = rng.uniform(0, 2 * math.pi)

    def disc(cx: float, cy: float, r: float, fill: int) -> None:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)

    if name == 'circle':
        disc(centre, centre, radius, 255)
    elif name == 'ring':
        disc(centre, centre, radius, 255)
        disc(centre, centre, radius * rng.uniform(0.45, 0.65), 0)
    elif name == 'crescent':
        disc(centre, centre, radius, 255)
        offset = radius * rng.uniform(0.35, 0.6)
        disc(centre + offset * math.cos(theta), centre + offset * math.sin(theta),
             radius * rng.uniform(0.75, 0.95), 0)
    else:
        rotation = np.array([[math.cos(theta), -math.sin(theta)],
                             [math.sin(theta), math.cos(theta)]])
        points = _unit_polygon(rng, name) @ rotation.T * radius + centre
        draw.polygon([tuple(p) for p in points], fill=255)
    alpha = np.asarray(image.resize((side, side), Image.Resampling.BOX),
                       dtype=np.float32) / 255.0
    rows, cols = np.nonzero(alpha)
    return alpha[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _paint(rng: np.random.Generator, canvas: np.ndarray, alpha: np.ndarray,
           x0: int, y0: int) -> None:
    """Composite a shape at (x0, y0) in a colour contrasting with what lies beneath.

    The fill is solid or a linear two-tone gradient.
    """
    height, width = alpha.shape
    region = canvas[y0:y0 + height, x0:x0 + width]
    backdrop = region[alpha >= 0.5].mean(axis=0)
    best, best_distance = None, -1.0
    for _ in range(8):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        distance = float(np.linalg.norm(colour - backdrop))
        if distance > best_distance:
            best, best_distance = colour, distance
        if distance >= MIN_COLOUR_DISTANCE:
            break
    fill = np.broadcast_to(best, region.shape)
    if rng.random() < 0.4:
        angle = rng.uniform(0, 2 * math.pi)
        ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
        xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
        ramp = xs * math.cos(angle) + ys * math.sin(angle)
        fill = best + ramp[..., None] * rng.uniform(-90, 90, 3).astype(np.float32)
    a = alpha[..., None]
    region[...] = region * (1 - a) + fill * a


def _finish(rng: np.random.Generator, canvas: np.ndarray, max_sigma: float) -> Image.Image:
    """Add Gaussian pixel noise and quantise to an RGB image."""
    sigma = rng.uniform(2.0, max_sigma)
    canvas = canvas + rng.standard_normal(canvas.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))


def draw_image(rng: np.random.Generator, width: int,
               height: int) -> tuple[Image.Image, list[dict]]:
    """Draw one detection image.

    Returns the RGB image and its annotations, each
    ``dict(bbox=[x, y, w, h], category_id=1..8, area=w * h)`` with the box
    tight around the object's visible mask pixels.
    """
    canvas = _background(rng, width, height)
    if rng.random() < CLUTTER_PROBABILITY:
        canvas = _clutter(rng, canvas)
    owner = np.full((height, width), -1, dtype=np.int16)  # index of topmost object
    placed: list[tuple[int, int, int, np.ndarray]] = []  # label, x0, y0, mask
    full_area: list[int] = []
    visible: list[int] = []
    max_diameter = MAX_DIAMETER_FRACTION * min(width, height)
    for _ in range(rng.integers(1, MAX_OBJECTS + 1)):
        label = int(rng.integers(len(SYNTH_CLASSES)))
        diameter = math.exp(rng.uniform(math.log(MIN_DIAMETER), math.log(max_diameter)))
        alpha = _shape_alpha(rng, label, diameter, supersample=2)
        mask = alpha >= 0.5
        h, w = mask.shape
        for _ in range(PLACEMENT_TRIES):
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            region = owner[y0:y0 + h, x0:x0 + w]
            hidden = np.bincount(region[mask] + 1, minlength=len(placed) + 1)[1:]
            remaining = np.asarray(visible, dtype=np.int64) - hidden
            if np.all(remaining >= MIN_VISIBLE_FRACTION * np.asarray(full_area)):
                break
        else:
            continue
        _paint(rng, canvas, alpha, x0, y0)
        region[mask] = len(placed)
        visible = remaining.tolist() + [int(mask.sum())]
        full_area.append(int(mask.sum()))
        placed.append((label, x0, y0, mask))
    annotations = []
    for index, (label, x0, y0, mask) in enumerate(placed):
        h, w = mask.shape
        rows, cols = np.nonzero(owner[y0:y0 + h, x0:x0 + w] == index)
        bw, bh = int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)
        annotations.append(dict(bbox=[x0 + int(cols.min()), y0 + int(rows.min()), bw, bh],
                                 category_id=label + 1, area=bw * bh))
    return _finish(rng, canvas, max_sigma=14.0), annotations


def draw_classification_image(rng: np.random.Generator, label: int, size: int) -> Image.Image:
    """Draw one ``size`` x ``size`` image with a single, roughly centred shape."""
    canvas = _background(rng, size, size)
    alpha = _shape_alpha(rng, label, rng.uniform(0.5, 0.85) * size, supersample=4)
    h, w = alpha.shape
    jitter = max(1, size // 8)
    x0 = int(np.clip((size - w) // 2 + rng.integers(-jitter, jitter + 1), 0, size - w))
    y0 = int(np.clip((size - h) // 2 + rng.integers(-jitter, jitter + 1), 0, size - h))
    _paint(rng, canvas, alpha, x0, y0)
    return _finish(rng, canvas, max_sigma=10.0)


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------
def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The RNG of one image; independent of worker count and drawing order."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def _voc_xml(filename: str, width: int, height: int, annotations: list[dict]) -> bytes:
    """Serialise one image's annotations as Pascal VOC XML (1-based pixel boxes)."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = f'VOC{SYNTH_VOC_YEAR}'
    ET.SubElement(root, 'filename').text = filename
    ET.SubElement(ET.SubElement(root, 'source'), 'database').text = 'snn_det synthetic shapes'
    size = ET.SubElement(root, 'size')
    for tag, value in (('width', width), ('height', height), ('depth', 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, 'segmented').text = '0'
    for ann in annotations:
        x, y, w, h = ann['bbox']
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = SYNTH_CLASSES[ann['category_id'] - 1]
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        box = ET.SubElement(obj, 'bndbox')
        for tag, value in (('xmin', x + 1), ('ymin', y + 1), ('xmax', x + w), ('ymax', y + h)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding='utf-8', xml_declaration=False) + b'\n'


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst``, copying when the filesystem refuses links."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _detection_job(job: tuple[str, int, str, int]) -> tuple[int, int, list[dict]]:
    """Draw and write one detection image (JPEG, VOC link/copy, VOC XML)."""
    root, seed, split, index = job
    rng = _image_rng(seed, split, index)
    low, high = IMAGE_SIDE_RANGE
    width, height = (int(v) for v in rng.integers(low, high + 1, 2))
    image, annotations = draw_image(rng, width, height)
    stem = f'{split}_{index:06d}'
    coco_path = Path(root, 'coco', split, f'{stem}.jpg')
    image.save(coco_path, **JPEG_OPTIONS)
    voc = Path(root, 'VOCdevkit', f'VOC{SYNTH_VOC_YEAR}')
    _link_or_copy(coco_path, voc / 'JPEGImages' / f'{stem}.jpg')
    (voc / 'Annotations' / f'{stem}.xml').write_bytes(
        _voc_xml(f'{stem}.jpg', width, height, annotations))
    return width, height, annotations


def _classification_job(job: tuple[str, int, str, int, int]) -> str:
    """Draw and write one classification PNG; return its ``meta/*.txt`` line."""
    root, seed, split, index, size = job
    label = index % len(SYNTH_CLASSES)
    image = draw_classification_image(_image_rng(seed, f'cls_{split}', index), label, size)
    relative = f'{SYNTH_CLASSES[label]}/{index:06d}.png'
    image.save(Path(root, 'cls', split, relative), format='PNG', optimize=False)
    return f'{relative} {label}'


def _run_jobs(function: Callable, jobs: Sequence, workers: int | None, title: str,
              progress: bool) -> list:
    """Map ``function`` over ``jobs`` in order, in ``workers`` processes, with progress lines."""
    workers = workers or min(2, os.cpu_count() or 1)
    step = max(1, math.ceil(len(jobs) / 10))
    start = time.perf_counter()
    results = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(multiprocessing.Pool(workers))
            iterator = pool.imap(function, jobs, chunksize=8)
        else:
            iterator = map(function, jobs)
        for done, result in enumerate(iterator, 1):
            results.append(result)
            if progress and (done % step == 0 or done == len(jobs)):
                print(f'[synth] {title}: {done}/{len(jobs)} '
                      f'({100 * done // len(jobs)}%) {time.perf_counter() - start:.1f}s',
                      flush=True)
    return results


@contextlib.contextmanager
def _staged(out_dir: Path, tag: str) -> Iterator[Path]:
    """Yield a temporary sibling of ``out_dir``; on success move its entries into ``out_dir``.

    Each top-level entry replaces the one of the same name, so ``out_dir`` never
    holds a half-written tree; an interrupted run leaves only a hidden
    ``.<name>.<tag>-*`` sibling behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.{tag}-', dir=out_dir.parent))
    try:
        yield staging
        out_dir.mkdir(exist_ok=True)
        for entry in sorted(staging.iterdir()):
            target = out_dir / entry.name
            if target.exists():
                os.replace(target, staging / f'{entry.name}.old')
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _area_buckets(annotations: list[dict]) -> dict[str, int]:
    """Count annotations per COCO area range (by box area)."""
    areas = np.array([ann['area'] for ann in annotations])
    return dict(small=int((areas < COCO_SMALL).sum()),
                medium=int(((areas >= COCO_SMALL) & (areas < COCO_MEDIUM)).sum()),
                large=int((areas >= COCO_MEDIUM).sum()))


def generate_detection_dataset(out_dir: str | os.PathLike, seed: int = 0, num_train: int = 2000,
                               num_val: int = 320, workers: int | None = None,
                               progress: bool = True, num_test: int = 0) -> dict:
    """Write the COCO and VOC detection layouts (``coco/``, ``VOCdevkit/``) under ``out_dir``.

    ``num_test > 0`` adds the held-out ``test`` split (its own image seeds; train and
    val do not depend on it).

    Both trees are built in a temporary sibling directory and moved into place
    at the end. Returns the detection part of the metadata: parameters, class
    names, per-split image/annotation counts and COCO area-range counts.
    """
    if num_test < 0:
        raise ValueError(f'num_test must be >= 0 (0: no test split), got {num_test}')
    splits = {'train': num_train, 'val': num_val}
    if num_test:
        splits['test'] = num_test
    meta: dict = dict(generator_version=GENERATOR_VERSION,
                      params=dict(seed=seed, num_train=num_train, num_val=num_val,
                                  num_test=num_test),
                      classes=list(SYNTH_CLASSES), voc_year=SYNTH_VOC_YEAR,
                      area='bbox w*h', splits={})
    with _staged(Path(out_dir), 'det') as root:
        voc = root / 'VOCdevkit' / f'VOC{SYNTH_VOC_YEAR}'
        for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
            (voc / sub).mkdir(parents=True)
        (root / 'coco' / 'annotations').mkdir(parents=True)
        for split in splits:
            (root / 'coco' / split).mkdir()
        jobs = [(str(root), seed, split, i) for split, n in splits.items() for i in range(n)]
        results = iter(_run_jobs(_detection_job, jobs, workers, 'detection', progress))
        for split, count in splits.items():
            images, annotations = [], []
            for index in range(count):
                width, height, anns = next(results)
                images.append(dict(id=index + 1, file_name=f'{split}_{index:06d}.jpg',
                                   width=width, height=height))
                for ann in anns:
                    x, y, w, h = ann['bbox']
                    annotations.append(dict(
                        id=len(annotations) + 1, image_id=index + 1,
                        category_id=ann['category_id'], bbox=ann['bbox'], area=ann['area'],
                        iscrowd=0, segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
            coco = dict(info=dict(description='snn_det synthetic shapes',
                                  version=GENERATOR_VERSION),
                        licenses=[], images=images, annotations=annotations,
                        categories=[dict(id=i + 1, name=name, supercategory='shape')
                                    for i, name in enumerate(SYNTH_CLASSES)])
            (root / 'coco' / 'annotations' / f'instances_{split}.json').write_text(
                json.dumps(coco, separators=(',', ':')) + '\n')
            (voc / 'ImageSets' / 'Main' / f'{split}.txt').write_text(
                ''.join(f'{split}_{i:06d}\n' for i in range(count)))
            meta['splits'][split] = dict(images=count, annotations=len(annotations),
                                         area_ranges=_area_buckets(annotations))
        main = voc / 'ImageSets' / 'Main'
        (main / 'trainval.txt').write_text((main / 'train.txt').read_text()
                                           + (main / 'val.txt').read_text())
        if not num_test:
            shutil.copyfile(main / 'val.txt', main / 'test.txt')
    return meta


def generate_classification_dataset(out_dir: str | os.PathLike, seed: int = 0,
                                    num_train: int = 3000, num_val: int = 600, size: int = 32,
                                    workers: int | None = None, progress: bool = True,
                                    num_test: int = 0) -> dict:
    """Write the single-object classification set (``cls/``) under ``out_dir``: ``train``,
    ``val`` (model selection) and, with ``num_test``, a held-out ``test`` split drawn
    with its own seed stream (never used to train, calibrate or choose).

    Labels cycle through the classes (``index % 8``), so splits are balanced.
    Returns the classification part of the metadata.
    """
    splits = {'train': num_train, 'val': num_val, **({'test': num_test} if num_test else {})}
    with _staged(Path(out_dir), 'cls') as root:
        for split in splits:
            for name in SYNTH_CLASSES:
                (root / 'cls' / split / name).mkdir(parents=True)
        (root / 'cls' / 'meta').mkdir()
        jobs = [(str(root), seed, split, i, size) for split, n in splits.items() for i in range(n)]
        lines = iter(_run_jobs(_classification_job, jobs, workers, 'classification', progress))
        for split, count in splits.items():
            (root / 'cls' / 'meta' / f'{split}.txt').write_text(
                ''.join(f'{next(lines)}\n' for _ in range(count)))
    return dict(generator_version=GENERATOR_VERSION,
                params=dict(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test,
                            size=size),
                classes=list(SYNTH_CLASSES), splits=splits)


def dataset_checksum(root: str | os.PathLike) -> str:
    """SHA-256 over the sorted relative paths and bytes of all files but ``meta.json``."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob('*')
                   if p.is_file() and p.relative_to(root).as_posix() != META_FILE)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b'\0')
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_meta(out_dir: Path) -> dict | None:
    """Return ``meta.json`` of ``out_dir`` or ``None`` when absent or unreadable."""
    try:
        return json.loads((out_dir / META_FILE).read_text())
    except (OSError, ValueError):
        return None


def build_synthetic_data(out_dir: str | os.PathLike = 'data/synth', seed: int = 0,
                         num_train: int = 2000, num_val: int = 320, num_cls_train: int = 3000,
                         num_cls_val: int = 600, cls_size: int = 32, workers: int | None = None,
                         force: bool = False, progress: bool = True,
                         num_test: int = 400, num_cls_test: int = 600) -> tuple[dict, bool]:
    """Generate detection and classification data under ``out_dir`` unless already there.

    The data is up to date when ``meta.json`` records the same parameters and
    generator version and the files still hash to its checksum. ``meta.json`` is
    removed before and rewritten after generating, so it marks a complete tree.
    Returns ``(meta, built)``.
    """
    out_dir = Path(out_dir)
    for name, n in (('num_test', num_test), ('num_cls_test', num_cls_test)):
        if n < 0:
            raise ValueError(f'{name} must be >= 0 (0: no test split), got {n}')
    params = dict(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test,
                  num_cls_train=num_cls_train, num_cls_val=num_cls_val, cls_size=cls_size,
                  num_cls_test=num_cls_test)
    meta = _read_meta(out_dir)
    if (not force and meta is not None and meta.get('generator_version') == GENERATOR_VERSION
            and meta.get('params') == params and meta.get('checksum') == dataset_checksum(out_dir)):
        return meta, False
    (out_dir / META_FILE).unlink(missing_ok=True)
    detection = generate_detection_dataset(out_dir, seed, num_train, num_val, workers, progress,
                                           num_test=num_test)
    classification = generate_classification_dataset(out_dir, seed, num_cls_train, num_cls_val,
                                                      cls_size, workers, progress, num_cls_test)
    meta = dict(generator_version=GENERATOR_VERSION, params=params, classes=list(SYNTH_CLASSES),
                voc_year=SYNTH_VOC_YEAR, detection=detection['splits'],
                classification=classification['splits'], area=detection['area'],
                checksum=dataset_checksum(out_dir))
    partial = out_dir / f'.{META_FILE}.partial'
    partial.write_text(json.dumps(meta, indent=2) + '\n')
    os.replace(partial, out_dir / META_FILE)
    return meta, True
