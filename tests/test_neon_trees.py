"""The NEON tree-crown dataset builder on a tiny fake deepforest wheel (no network)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snn_det.datasets.neon_trees import (TRAIN_IMAGES, WHEEL_DATA, WHEEL_NAME, NeonTreesError,
                                         build_neon_trees_data, crop_boxes, fetch_wheel,
                                         parse_voc, tile_origins)

TRAIN = TRAIN_IMAGES[0]
TEST = 'SOAP_061'
TILE, OVERLAP = 20, 10


def voc(name: str, w: int, h: int, objects: list) -> bytes:
    objs = ''.join(f'<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>'
                   f'<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>'
                   for n, (a, b, c, d) in objects)
    return (f'<annotation><filename>{name}.png</filename><size><width>{w}</width>'
            f'<height>{h}</height><depth>3</depth></size>{objs}</annotation>').encode()


def png(arr: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='PNG')
    return buf.getvalue()


TRAIN_BOXES = [('Tree', (2, 2, 8, 8)), ('Tree', (16, 3, 24, 9)), ('Tree', (30, 30, 40, 38))]
TEST_BOXES = [('Alive', (1, 1, 7, 7)), ('Dead', (10, 12, 18, 19))]


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(0)
    return dict(train=rng.integers(0, 256, (44, 50, 3), dtype=np.uint8),
                test=rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))


def fake_wheel(path: Path, images: dict, test_xml: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr(WHEEL_DATA + TRAIN + '.png', png(images['train']))
        zf.writestr(WHEEL_DATA + TRAIN + '.xml', voc(TRAIN, 50, 44, TRAIN_BOXES))
        zf.writestr(WHEEL_DATA + TEST + '.png', png(images['test']))
        zf.writestr(WHEEL_DATA + TEST + '.xml',
                    test_xml if test_xml is not None else voc(TEST, 20, 20, TEST_BOXES))
    return path


def build(out: Path, src: Path, **kw):
    return build_neon_trees_data(out, src=src, test_images=[TEST], tile=TILE,
                                 train_overlap=OVERLAP, **kw)


@pytest.fixture(scope='module')
def built(tmp_path_factory, images):
    root = tmp_path_factory.mktemp('neon')
    wheel = fake_wheel(root / 'fake.whl', images)
    meta, done = build(root / 'out', wheel)
    assert done
    coco = {s: json.loads((root / 'out' / 'annotations' / f'instances_{s}.json').read_text())
            for s in ('train', 'test', 'test_whole')}
    return root, wheel, meta, coco


def test_tile_origins_cover_evenly_with_the_overlap():
    xs = tile_origins(2299, 400, 200)
    assert xs[0] == 0 and xs[-1] == 2299 - 400 and len(xs) == 11
    assert max(np.diff(xs)) <= 200
    assert tile_origins(400, 400, 0) == [0] and tile_origins(300, 400, 0) == [0]
    assert tile_origins(1249, 400, 0) == [0, 283, 566, 849]      # fewest tiles covering
    with pytest.raises(NeonTreesError, match='overlap'):
        tile_origins(100, 20, 20)


def test_crop_boxes_clips_and_keeps_boxes_mostly_inside():
    boxes = np.array([[5, 5, 15, 15],        # inside
                      [15, 0, 25, 10],       # half inside: kept
                      [16, 0, 26, 10],       # 40 % inside: ignored region
                      [30, 30, 40, 40]],     # outside: dropped
                     dtype=float)
    clipped, keep = crop_boxes(boxes, 0, 0, 20, 20, 0.5)
    np.testing.assert_allclose(clipped, [[5, 5, 15, 15], [15, 0, 20, 10], [16, 0, 20, 10]])
    assert keep.tolist() == [True, True, False]
    shifted, keep = crop_boxes(boxes[:1], 4, 3, 20, 20, 0.5)
    np.testing.assert_allclose(shifted, [[1, 2, 11, 12]])


def test_splits_tiles_and_class_mapping(built, images):
    root, _, meta, coco = built
    out = root / 'out'
    train, test, whole = coco['train'], coco['test'], coco['test_whole']
    # train: 50 x 44 image, 20-px tiles, >= 10 px overlap -> x 0,10,20,30 ; y 0,8,16,24
    assert len(train['images']) == 16 and meta['splits']['train']['images'] == 16
    assert {im['source'] for im in train['images']} == {TRAIN}
    assert {im['source'] for im in test['images']} == {TEST} == \
        {im['source'] for im in whole['images']}
    assert not {im['file_name'] for im in train['images']} & \
        {im['file_name'] for im in test['images']}
    for split in ('train', 'test'):
        for im in coco[split]['images']:
            assert im['width'] == im['height'] == TILE
    # a tile's pixels are the source crop
    im = next(i for i in train['images'] if (i['x0'], i['y0']) == (30, 24))
    tile = np.asarray(Image.open(out / 'train' / im['file_name']))
    np.testing.assert_array_equal(tile, images['train'][24:44, 30:50])
    boxes = [a for a in train['annotations'] if a['image_id'] == im['id']]
    assert [a['bbox'] for a in boxes] == [[0.0, 6.0, 10.0, 8.0]] and not boxes[0]['iscrowd']
    # box (16,3)-(24,9) in the tile at x0=10: inside; at x0=20: 4/8 inside -> kept
    at20 = [a for a in train['annotations'] if a['image_id'] == next(
        i['id'] for i in train['images'] if (i['x0'], i['y0']) == (20, 0))]
    assert [0.0, 3.0, 4.0, 6.0] in [a['bbox'] for a in at20 if not a['iscrowd']]
    # one class; SOAP's Alive / Dead both 'tree'
    assert [c['name'] for c in train['categories']] == ['tree']
    assert {a['category_id'] for s in coco.values() for a in s['annotations']} == {1}
    assert meta['source_labels'] == {'Tree': 3, 'Alive': 1, 'Dead': 1}
    # whole image: every box, uncut
    assert len(whole['images']) == 1 and whole['images'][0]['width'] == 20
    assert sorted(a['bbox'] for a in whole['annotations']) == [[1.0, 1.0, 6.0, 6.0],
                                                               [10.0, 12.0, 8.0, 7.0]]


def test_up_to_date_then_rebuilt_when_a_file_changes(built):
    root, wheel, meta, _ = built
    again, done = build(root / 'out', wheel)
    assert not done and again['checksum'] == meta['checksum']
    victim = root / 'out' / 'test_whole' / f'{TEST}.png'
    original = victim.read_bytes()
    victim.write_bytes(b'x')
    _, done = build(root / 'out', wheel)
    assert done and victim.read_bytes() == original


def leftovers(parent: Path) -> list:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith('.'))


def test_corrupt_wheel_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / 'bad.whl'
    bad.write_bytes(b'not a zip at all')
    with pytest.raises(NeonTreesError) as e:
        build(tmp_path / 'out', bad)
    msg = str(e.value)
    assert '\n' not in msg and 'bad.whl' in msg
    assert 'pip download --no-deps deepforest==2.1.0' in msg
    assert not (tmp_path / 'out').exists() and leftovers(tmp_path) == []


def test_corrupt_xml_names_the_file_and_keeps_the_old_data(built, tmp_path, images):
    root, _, meta, _ = built
    bad = fake_wheel(tmp_path / 'badxml.whl', images, test_xml=b'<annotation><object>')
    with pytest.raises(NeonTreesError, match=f'{TEST}.xml: not valid XML') as e:
        build(root / 'out', bad, force=True)
    assert '\n' not in str(e.value)
    assert json.loads((root / 'out' / 'meta.json').read_text())['checksum'] == meta['checksum']
    assert leftovers(root) == []
    with pytest.raises(NeonTreesError, match='object 0 has no numeric'):
        parse_voc(b'<annotation><object><name>Tree</name></object></annotation>', 'x.xml')
    with pytest.raises(NeonTreesError, match='differs from the image'):
        parse_voc(voc('a', 30, 20, []), 'a.xml', (20, 20))


def test_corrupt_image_in_a_folder_source(tmp_path, images):
    src = tmp_path / 'mine'
    src.mkdir()
    Image.fromarray(images['train']).save(src / 'plot_a.png')
    (src / 'plot_a.xml').write_bytes(voc('plot_a', 50, 44, TRAIN_BOXES))
    (src / 'plot_b.png').write_bytes(b'\x89PNG broken')
    (src / 'plot_b.xml').write_bytes(voc('plot_b', 20, 20, TEST_BOXES))
    with pytest.raises(NeonTreesError, match='plot_b.png: unreadable image'):
        build_neon_trees_data(tmp_path / 'out', src=src, test_images=['plot_b'], tile=TILE,
                              train_overlap=OVERLAP)
    assert not (tmp_path / 'out').exists() and leftovers(tmp_path) == []
    Image.fromarray(images['test']).save(src / 'plot_b.png')
    meta, done = build_neon_trees_data(tmp_path / 'out', src=src, test_images=['plot_b'],
                                       tile=TILE, train_overlap=OVERLAP)
    assert done and meta['splits']['test_whole']['boxes'] == 2
    with pytest.raises(NeonTreesError, match='name the held-out images'):
        build_neon_trees_data(tmp_path / 'out2', src=src)


def test_cached_wheel_is_checked_and_a_missing_one_names_the_fix(tmp_path):
    with pytest.raises(NeonTreesError, match=r'missing; fetch it: pip download --no-deps '
                                             r'deepforest==2\.1\.0 -d '):
        fetch_wheel(tmp_path, download=False)
    (tmp_path / WHEEL_NAME).write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(NeonTreesError, match='sha256 differs'):
        fetch_wheel(tmp_path, download=False)


def test_make_data_cli_reports_one_line(tmp_path, monkeypatch, capsys):
    import runpy
    bad = tmp_path / 'bad.whl'
    bad.write_bytes(b'garbage')
    monkeypatch.setattr('sys.argv', ['make_data.py', '--dataset', 'neon-trees', '--src',
                                     str(bad), '--out', str(tmp_path / 'out')])
    tool = Path(__file__).resolve().parents[1] / 'tools' / 'make_data.py'
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(tool), run_name='__main__')
    assert str(e.value).startswith('[neon-trees] error: ') and '\n' not in str(e.value)
    assert not (tmp_path / 'out').exists()
