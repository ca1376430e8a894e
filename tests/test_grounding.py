import numpy as np
import pytest
import torch

from imcaption.captioning.grounding import cell_boxes, measure_grounding, normalized_box, overlaps
from imcaption.text.word_tokenizer import END, WordTokenizer

TOKENIZER = WordTokenizer(("a", "red", "circle", "blue", "square", "and"))
# One red circle in the top-left 4x4 cell block of a 128-pixel image, one blue square bottom-right.
OBJECTS = [
    [
        {"shape": "circle", "color": "red", "size": "large", "bbox": [10, 10, 30, 30]},
        {"shape": "square", "color": "blue", "size": "large", "bbox": [90, 90, 30, 30]},
    ]
]


def tokens(*words: str) -> torch.Tensor:
    return torch.tensor([[TOKENIZER.index[w] for w in words] + [END]])


def attention_on(cells: list[int], cell_count: int = 16) -> torch.Tensor:
    """One peaked map per step: all weight on the given cell."""
    maps = torch.zeros(1, len(cells) + 1, cell_count)
    for step, cell in enumerate(cells):
        maps[0, step, cell] = 1.0
    return maps


def test_cells_cover_the_image_row_major():
    cells = cell_boxes(2, 4)
    assert cells.shape == (8, 4)
    assert cells[1].tolist() == [0.25, 0, 0.5, 0.5]  # second cell of the first row
    assert cells[4].tolist() == [0, 0.5, 0.25, 1]  # first cell of the second row


def test_overlap_needs_shared_area():
    cells = cell_boxes(4, 4)
    # x and y 10-40 of 128 px: cells (0,0), (0,1), (1,0), (1,1)
    hit = overlaps(cells, normalized_box([10, 10, 30, 30], (128, 128)))
    assert np.flatnonzero(hit).tolist() == [0, 1, 4, 5]


def test_peaks_on_the_named_objects_are_grounded():
    # "a red circle and a blue square": red/circle look at cell 0, blue/square at cell 15.
    ids = tokens("a", "red", "circle", "and", "a", "blue", "square")
    report = measure_grounding(ids, attention_on([3, 0, 5, 3, 3, 15, 15]), TOKENIZER, OBJECTS, (4, 4), [(128, 128)])
    assert (report.words, report.grounded) == (4, 4)
    assert report.rate == 1.0
    assert report.chance == pytest.approx(4 / 16)


def test_peak_on_the_wrong_object_or_an_absent_word_is_not_grounded():
    ids = tokens("a", "red", "square")  # red looks at the blue square; "square" looks at the red circle
    report = measure_grounding(ids, attention_on([0, 15, 0]), TOKENIZER, OBJECTS, (4, 4), [(128, 128)])
    assert (report.words, report.grounded) == (2, 0)
    missing = [[OBJECTS[0][1]]]  # only the blue square: "red" names nothing in the image
    report = measure_grounding(tokens("a", "red"), attention_on([0, 15]), TOKENIZER, missing, (4, 4), [(128, 128)])
    assert (report.words, report.grounded, report.chance) == (1, 0, 0.0)


def test_words_after_end_are_ignored():
    ids = torch.cat([tokens("a", "red"), tokens("blue")], dim=1)  # a red <end> blue <end>
    report = measure_grounding(ids, attention_on([0, 0, 0, 15]), TOKENIZER, OBJECTS, (4, 4), [(128, 128)])
    assert report.words == 1


def test_boxes_are_matched_to_the_grid_whatever_size_the_model_reads():
    # The same scene stored at 128 px and at 256 px (boxes scaled with it) grounds the same peaks: the grid
    # covers the image, not a fixed number of pixels.
    ids = tokens("a", "red", "circle", "and", "a", "blue", "square")
    peaks = attention_on([3, 0, 5, 3, 3, 15, 15])
    small = measure_grounding(ids, peaks, TOKENIZER, OBJECTS, (4, 4), [(128, 128)])
    doubled = [[{**o, "bbox": [2 * v for v in o["bbox"]]} for o in OBJECTS[0]]]
    large = measure_grounding(ids, peaks, TOKENIZER, doubled, (4, 4), [(256, 256)])
    assert (small.words, small.grounded, small.chance) == (large.words, large.grounded, large.chance) == (4, 4, 0.25)


def test_a_corner_object_lands_in_the_corner_cell_of_a_coarser_grid():
    # A 7 x 7 grid (MobileNetV2 at 224 px) over a 128-px scene: the blue square at x, y 90-120 spans 0.70 to 0.94
    # of each side, the last three rows and columns of cells. Measured in 224-px units, as once done, it would
    # span 0.40 to 0.54, cells 2-3 of each row: a peak on the real corner would count as a miss.
    report = measure_grounding(tokens("a", "blue"), attention_on([0, 48], 49), TOKENIZER, OBJECTS, (7, 7), [(128, 128)])
    assert (report.words, report.grounded) == (1, 1)
    assert report.chance == pytest.approx(9 / 49)
