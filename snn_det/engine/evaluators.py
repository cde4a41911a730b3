"""Evaluators told which images they score, and checked to hold those images' boxes."""
from typing import List

#: images whose boxes are compared between the test set and a metric's ground truth
CHECKED_IMAGES = 20


def restrict_evaluator_to_dataset(evaluator, dataset) -> None:
    """Evaluate COCO-style metrics on the images ``dataset`` yields.

    ``CocoMetric`` scores every image of its annotation file; when the test set
    is a subset (``test_dataloader.dataset.indices=N``) the missing images would
    count as misses, so the metric is told which image ids are evaluated.  Its
    ground truth must be the test set's (:func:`check_ground_truth`).
    """
    ids = None
    for metric in evaluator.metrics:
        if getattr(metric, '_coco_api', None) is not None:
            check_ground_truth(metric._coco_api, dataset)
        if hasattr(metric, 'img_ids') and getattr(metric, 'img_ids', None) is None:
            if ids is None:
                ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]
            metric.img_ids = ids


def _boxes(instances) -> List[tuple]:
    return [tuple(round(float(v), 2) for v in inst['bbox']) for inst in instances]


def check_ground_truth(coco_gt, dataset) -> None:
    """Raise ``ValueError`` (one line) when the metric's annotation file does not hold the
    test images' boxes: every box ``dataset`` loads for its first :data:`CHECKED_IMAGES`
    annotated images must be in the metric's ground truth for the same image id.  A
    metric left on another annotation file (``test_evaluator.ann_file`` not following
    ``test_dataloader.dataset``) would otherwise score the predictions against other
    images' boxes without a word."""
    checked = 0
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        boxes = _boxes(info.get('instances') or [])
        if not boxes:
            continue
        img_id = info['img_id']
        theirs = {tuple(round(v, 2) for v in (b[0], b[1], b[0] + b[2], b[1] + b[3]))
                  for b in (a['bbox'] for a in coco_gt.imgToAnns.get(img_id, []))}
        missing = [b for b in boxes if b not in theirs]
        if missing:
            name = info.get('img_path', f'image id {img_id}')
            where = getattr(dataset, 'ann_file', 'test_dataloader.dataset')
            raise ValueError(
                f"the metric's annotation file does not hold the test images' boxes: {name} "
                f'has {len(boxes)} boxes in {where}, {len(missing)} of them not in the '
                "metric's; point test_evaluator.ann_file at the test set's annotation file")
        checked += 1
        if checked >= CHECKED_IMAGES:
            return
