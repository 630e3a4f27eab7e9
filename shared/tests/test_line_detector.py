"Line detector: metric, post-processing on hand-made maps, polarity, scale (no TensorFlow needed)."
import numpy as np
import pytest

from text_recognizer.inference.detector import (PAGE_WIDTH, SQUEEZE, body_target, bodies_to_boxes, detect_lines, component_boxes, detection_scale, ink_image, label_components, projection_boxes, runs, squeeze, squeezed_shape)
from text_recognizer.training.detection import box_iou, line_scores, match_lines


def test_box_iou_known_values():
    a = [[0, 0, 10, 10], [0, 0, 20, 10]]
    iou = box_iou(a, [[0, 0, 10, 10], [5, 0, 15, 10], [30, 30, 40, 40]])
    assert iou.shape == (2, 3)
    assert np.allclose(iou[0], [1, 50 / 150, 0]) and np.isclose(iou[1, 0], 0.5)
    assert box_iou([], [[0, 0, 1, 1]]).shape == (0, 1)


def test_match_lines_is_one_to_one_and_best_first():
    true = [[0, 0, 100, 20], [0, 22, 100, 42]]
    pred = [[0, 1, 100, 21], [0, 0, 100, 19], [0, 21, 100, 43]]
    matches = match_lines(pred, true)
    assert sorted((p, t) for p, t, _ in matches) == [(1, 0), (2, 1)]   # pred 1 fits line 0 better than pred 0


def test_line_scores_counts():
    true = [np.array([[0, 0, 100, 20], [0, 20, 100, 40]]), np.array([[0, 0, 50, 20]])]
    s = line_scores([np.array([[0, 0, 100, 45]]), np.array([[0, 0, 50, 20], [0, 50, 50, 60]])], true)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 2)
    assert np.isclose(s["precision"], 1 / 3) and np.isclose(s["recall"], 1 / 3) and np.isclose(s["f1"], 1 / 3)
    assert line_scores([np.zeros((0, 4))], [np.zeros((0, 4))])["f1"] == 1
    with pytest.raises(ValueError, match="paragraphs"):
        line_scores([true[0]], true)


def test_runs():
    starts, ends = runs([1, 1, 0, 0, 1, 0, 1])
    assert starts.tolist() == [0, 4, 6] and ends.tolist() == [2, 5, 7]
    assert [r.tolist() for r in runs([0, 0])] == [[], []]


def test_label_components_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for _ in range(30):
        mask = rng.random((25, 35)) < rng.uniform(0.2, 0.7)
        labels, k = label_components(mask)
        expected, k_expected = ndimage.label(mask)
        assert k == k_expected
        assert len(set(zip(labels[mask], expected[mask]))) == k       # the same partition of the pixels
        assert (labels[~mask] == 0).all() and set(np.unique(labels[mask])) == set(range(1, k + 1))


def test_component_boxes_match_each_component():
    rng = np.random.default_rng(1)
    for _ in range(20):
        labels, k = label_components(rng.random((30, 45)) < rng.uniform(0.2, 0.6))
        boxes = component_boxes(labels, k)
        for i in range(1, k + 1):
            rows, cols = np.nonzero(labels == i)
            got = [boxes[key][i - 1] for key in ("top", "bottom", "left", "right", "area")]
            assert got == [rows.min(), rows.max(), cols.min(), cols.max(), len(rows)]
    assert all(len(v) == 0 for v in component_boxes(np.zeros((4, 4), np.int64), 0).values())


def test_bodies_to_boxes_on_hand_made_maps():
    probs = np.zeros((40, 60))
    probs[5:10, 2:50] = 0.9                                  # line 1
    probs[11:16, 2:40] = 0.9                                 # line 2, one empty row below line 1
    probs[25:30, 2:20] = probs[25:30, 24:45] = 0.9           # line 3 in two pieces (a gap between words)
    probs[35, 55] = 1.0                                      # a speck
    boxes = bodies_to_boxes(probs, (80, 480))
    assert len(boxes) == 3
    assert (np.diff(boxes[:, 1]) > 0).all()                  # top to bottom
    assert boxes[2, 0] == 2 * SQUEEZE[1] and boxes[2, 2] == 45 * SQUEEZE[1]
    assert boxes[0, 1] < 5 * SQUEEZE[0] and boxes[0, 3] > 10 * SQUEEZE[0]   # grown beyond the body
    assert (boxes[:, [0, 2]] <= 480).all() and (boxes[:, [1, 3]] <= 80).all() and (boxes >= 0).all()
    assert bodies_to_boxes(probs < 0, (80, 480)).shape == (0, 4)


def test_bodies_to_boxes_scales_back():
    probs = np.zeros((20, 40)); probs[4:9, 3:30] = 1
    assert (bodies_to_boxes(probs, (400, 1000), scale=0.5) == 2 * bodies_to_boxes(probs, (200, 500))).all()


def test_body_target_and_squeeze_shapes():
    mask = np.zeros((100, 300), np.uint8); mask[20:30, 16:200] = 1; mask[50:60, 16:100] = 2
    target = body_target(mask)
    assert target.shape == squeezed_shape(mask.shape) and target.shape[0] % 4 == 0 and target.shape[1] % 4 == 0
    assert label_components(target)[1] == 2
    assert squeeze(np.ones((100, 300)), 0.5).shape == squeezed_shape((100, 300), 0.5)


def _toy_page():
    page = np.zeros((60, 200), np.uint8)
    page[8:20, 10:180] = 220
    page[34:44, 10:90] = 180
    return page


def test_ink_image_either_polarity():
    page = _toy_page()
    light = ink_image(page)
    assert light.dtype == np.float32 and light.min() == 0 and light.max() == 1
    paper = 255 - (page * 0.7).astype(np.uint8)             # dark grey ink on white paper
    assert np.allclose(ink_image(paper), light, atol=0.05)
    assert ink_image(np.full((5, 5), 255, np.uint8)).max() == 0


def test_projection_baseline_either_polarity():
    page = _toy_page()
    assert projection_boxes(page, grow=0).tolist() == [[10, 8, 180, 20], [10, 34, 90, 44]]
    assert projection_boxes(page, grow=0.5).tolist() == [[10, 2, 180, 26], [10, 29, 90, 49]]
    assert projection_boxes(255 - page).tolist() == projection_boxes(page).tolist()
    assert projection_boxes(np.zeros((10, 10), np.uint8)).shape == (0, 4)


def test_detect_lines_scales_wide_images():
    assert detection_scale((480, 640)) == 1.0 and detection_scale((10, 700)) == 1.0
    assert np.isclose(detection_scale((1000, 2 * PAGE_WIDTH)), 0.5)
    seen = []

    def body_probs(x):                                       # a fake network: one body in the middle
        seen.append(x.shape)
        probs = np.zeros_like(x); probs[0, x.shape[1] // 2 - 2:x.shape[1] // 2 + 2, 1:-1, 0] = 1
        return probs

    boxes = detect_lines(np.zeros((480, 2 * PAGE_WIDTH), np.float32), body_probs)
    assert seen == [(1, *squeezed_shape((480, 2 * PAGE_WIDTH), 0.5), 1)]
    assert len(boxes) == 1 and boxes[0, 0] == 2 * SQUEEZE[1] and abs((boxes[0, 1] + boxes[0, 3]) / 2 - 240) <= 4
