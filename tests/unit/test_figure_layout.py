"""Figures sized for the book's page (about 800 px): wrapped titles, shared axes, short cell text."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from atlaskit.errors import ParameterError  # noqa: E402
from atlaskit.plots import wrap_title  # noqa: E402


def test_wrap_title_breaks_at_spaces():
    assert wrap_title("aaa bbb ccc", 7) == "aaa bbb<br>ccc"
    assert wrap_title("aaa bbb ccc", 7, sep="\n") == "aaa bbb\nccc"
    assert wrap_title("short title") == "short title"
    # a word longer than the width stays whole; hyphenated words are not split
    assert wrap_title("x deepGPS-single-4 y", 5) == "x<br>deepGPS-single-4<br>y"
    assert wrap_title("") == ""
    with pytest.raises(ValueError, match="at least 1"):
        wrap_title("a b", 0)


def test_deepgps_confusion_panels_share_the_true_class_axis():
    from atlaskit.studies.deepgps.figures import confusion_matrices

    classes = ["cytoplasmic", "nucleoplasm", "vesicles", "er"]
    names = ["deepGPS-single-4, by protein", "deepGPS-single-4, by image",
             "composition + logistic regression, by protein"]
    m = np.arange(16).reshape(4, 4)
    fig = confusion_matrices({n: m + k for k, n in enumerate(names)}, classes)
    assert len(fig.data) == 3
    assert list(fig.data[0].y) == ["cytoplasm", "nucleoplasm", "vesicles", "ER"]
    assert fig.layout.yaxis2.matches == "y" and fig.layout.yaxis2.showticklabels is False
    titles = [a.text for a in fig.layout.annotations]
    assert titles[2] == "composition + logistic<br>regression, by protein"
    assert all(len(line) <= 28 for t in titles for line in t.split("<br>"))
    np.testing.assert_array_equal(fig.data[2].text, m + 2)


def test_multilabel_cells_show_whole_percents():
    from atlaskit.studies.cnnfcn.figures import _percent_text

    rates = np.array([[0.5, 0.004, 1.0], [np.nan, np.nan, np.nan], [0.125, 0.0, 0.996]])
    np.testing.assert_array_equal(_percent_text(rates), [["50", "", "100"], ["", "", ""], ["12", "", "100"]])


def test_multilabel_confusion_figure():
    from atlaskit.metrics.multilabel import multilabel_confusion
    from atlaskit.studies.cnnfcn.data import CLASSES
    from atlaskit.studies.cnnfcn.figures import fig_confusions

    t = np.eye(len(CLASSES), dtype=bool)
    p = t.copy()
    p[0] = False
    p[0, 1] = True  # class 0 missed once, class 1 predicted falsely instead
    cm = multilabel_confusion(t, p, CLASSES)
    fig = fig_confusions({k: SimpleNamespace(confusion=cm, mean_per_class_accuracy=0.9) for k in ("cnn", "fcn")})
    assert fig.data[0].text[0][1] == "100" and fig.data[0].text[1][1] == "100" and fig.data[0].text[0][0] == ""
    assert fig.layout.yaxis2.matches == "y" and fig.layout.yaxis2.showticklabels is False
    assert fig.layout.title.text == "Multi-label confusion matrices on the test split"
    assert all(len(line) <= 95 for line in fig.layout.title.subtitle.text.split("<br>"))


def _examples(n_maps, genes=("CCDC86", "FKBP8", "ARL6IP6")):
    rng = np.random.default_rng(0)
    return [(g, rng.random((2, 20, 20)), rng.random((2, 20, 20)), rng.random((n_maps, 2, 20, 20))) for g in genes]


def test_zeroing_figure_fits_the_page_and_keeps_its_title():
    from atlaskit.studies.cytoself.figures import zeroing_figure

    fig = zeroing_figure(_examples(11))
    width, _ = fig.get_size_inches()
    assert width <= 7.2 + 1e-9
    # 11 maps: 6 per line, two lines per example, 8 columns
    assert len(fig.axes) == 3 * 2 * 8
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 3 * (2 + 11)
    assert sorted(ax.get_title() for ax in shown[:13]) == sorted(
        ["input", "reconstruction"] + [f"− {r}" for r in "I II III IV V VI VII VIII IX X XI".split()])
    assert {ax.title.get_fontsize() for ax in shown} == {9.0}
    assert fig.axes[0].get_ylabel() == "CCDC86" and fig.axes[16].get_ylabel() == "FKBP8"
    # the title is the one asked for (wrapped), not the last panel's
    assert fig._suptitle.get_text().replace("\n", " ") == (
        "Feature zeroing: |difference| per index cluster (protein channel; one colour scale per example)")
    few = zeroing_figure(_examples(3), title=None)
    assert len(few.axes) == 3 * 5 and few._suptitle is None
    with pytest.raises(ParameterError, match="max_cols"):
        zeroing_figure(_examples(3), max_cols=2)
    plt.close("all")


def test_figure_png_is_an_opaque_rgb_png_and_empty_figures_show_nothing():
    """The book's static figures drop the alpha channel (white pages; an eighth smaller, losslessly)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from atlaskit.plots import figure_png

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow([[0.0, 1.0], [1.0, 0.0]], cmap="gray")
    with Image.open(io.BytesIO(figure_png(fig))) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.getpixel((0, 0)) == (255, 255, 255)  # the white page, not transparency
    assert figure_png(plt.figure()) is None
    plt.close("all")


def test_micrograph_grids_are_jpeg_and_plots_stay_png():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from atlaskit.plots import figure_jpeg, figure_png, is_photographic

    grid, axes = plt.subplots(1, 2, figsize=(3, 2))
    for ax, hide in zip(axes, ("axis off", "no ticks")):
        ax.imshow(np.random.default_rng(0).random((64, 64)), cmap="gray")
        if hide == "axis off":
            ax.axis("off")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    heat, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.eye(32))  # a heat map with ticks: keeps lossless PNG
    line, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    assert is_photographic(grid) and not is_photographic(heat) and not is_photographic(line)
    assert figure_png(grid) is None and figure_jpeg(heat) is None and figure_jpeg(line) is None
    with Image.open(io.BytesIO(figure_jpeg(grid))) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
    with Image.open(io.BytesIO(figure_png(heat))) as image:
        assert image.format == "PNG"
    plt.close("all")
