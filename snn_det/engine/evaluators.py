"""Evaluators told which images they score."""


def restrict_evaluator_to_dataset(evaluator, dataset) -> None:
    """Evaluate COCO-style metrics on the images ``dataset`` yields.

    ``CocoMetric`` scores every image of its annotation file; when the test set
    is a subset (``test_dataloader.dataset.indices=N``) the missing images would
    count as misses, so the metric is told which image ids are evaluated.
    """
    ids = None
    for metric in evaluator.metrics:
        if hasattr(metric, 'img_ids') and getattr(metric, 'img_ids', None) is None:
            if ids is None:
                ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]
            metric.img_ids = ids
