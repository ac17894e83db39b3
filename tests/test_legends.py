"""Legends in every view (issue 29): the overlay shows what will be painted, with a legend; the
compare's legend is as wide as its lines, lists no 0 % class, and a black swatch stays visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from chain.engine.pipeline import Chain
from chain.engine.render import MaskRenderer, _font
from chain.labels import COCO_STUFF, VOC, conversion
from chain.media import Trim
from chain.media.outputs import Outputs
from chain.stages.lookup import ColorizeSynthesizer, PaletteSegmenter
from tests.test_first_use import person_frames


def test_overlay_shows_the_remapped_colours_with_a_legend(tmp_path: Path) -> None:
    person_frames(tmp_path / "in")
    pipeline = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=ColorizeSynthesizer(COCO_STUFF),
                     remap=["person=bear"])
    pipeline(tmp_path / "in", Outputs(overlay=tmp_path / "overlay"), trim=Trim(max_frames=1))
    frame = np.asarray(Image.open(tmp_path / "in" / "000.png").convert("RGB")).astype(np.float32)
    shown = np.asarray(Image.open(tmp_path / "overlay" / "000000.png").convert("RGB"))
    legend = pipeline.views.overlay_renderer
    assert shown.shape[1] == 64 + legend.legend_width(48)  # the frame, then its legend
    bear = COCO_STUFF.palette[COCO_STUFF.id_of("bear")]
    expected = np.round(frame[2, 2] * 0.5 + bear * 0.5)
    assert np.abs(shown[2, 2].astype(int) - expected).max() <= 1  # bear's colour, not VOC person's
    assert sorted(legend.legend) == ["bear (was person) 50%", "car 50%"]


def test_legend_lists_no_zero_percent_class_and_keeps_a_noted_one() -> None:
    labels = np.full((200, 200), COCO_STUFF.id_of("unlabeled"), np.int64)  # COCO-Stuff's fallback, black
    labels[:100, :100] = COCO_STUFF.id_of("grass")
    labels[0, :40] = COCO_STUFF.id_of("car")  # 0.1 %: would read "car 0%"
    labels[1, :40] = COCO_STUFF.id_of("bear")  # 0.1 %, but a --remap made it: kept, as "<1%"
    renderer = MaskRenderer(COCO_STUFF, notes={COCO_STUFF.id_of("bear"): "was bird"})
    image = renderer(labels)
    assert renderer.legend == ["unlabeled 75%", "grass 25%", "bear (was bird) <1%", "+1 under 1%"]
    assert not any(line.endswith(" 0%") for line in renderer.legend)
    # The black swatch of "unlabeled" has a light edge on the dark panel.
    size = renderer.font_size(200)
    x0 = 200 + 6
    edge, inside, panel = image[4, x0 + size // 2], image[4 + size // 2, x0 + size // 2], image[150, -3]
    assert tuple(inside) == (0, 0, 0) and edge.min() > 150 and panel.max() < 40


def test_legend_is_as_wide_as_its_longest_possible_line() -> None:
    possible = np.unique(conversion(VOC, COCO_STUFF).lut)
    renderer = MaskRenderer(COCO_STUFF, possible=possible, notes={COCO_STUFF.id_of("bear"): "was bird"})
    height = 256
    font = _font(renderer.font_size(height))
    longest = max(font.getlength(renderer.legend_text(int(i), 1.0)) for i in possible)
    width = renderer.legend_width(height)
    assert longest < width <= longest + renderer.font_size(height) + 20
    # Every class of the space would need a wider panel: the bound comes from what can appear.
    assert MaskRenderer(COCO_STUFF, notes=renderer.notes).legend_width(height) > width


def test_compare_captions_cover_a_small_share_of_each_panel_at_any_size() -> None:
    """Issue 26: at 64x36 the caption hid half the frame. Now each panel keeps at least 95 % of its
    pixels (small frames: all of them, the captions sit in a band above) and each caption is drawn."""
    from chain.engine.render import caption_layout, side_by_side

    rng = np.random.default_rng(0)
    for width, height in ((64, 36), (96, 54), (128, 72), (256, 144), (640, 360)):
        panels = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)]
        image = side_by_side(panels, ["input", "synthesized"])
        _, band = caption_layout(height)
        assert image.shape == (height + band, 2 * width, 3)
        for i, panel in enumerate(panels):
            shown = image[band:, i * width:(i + 1) * width]
            covered = np.any(shown != panel, axis=-1).mean()
            assert covered < 0.05, (width, height, covered)
            # The caption is there: light text in the black band, or some changed pixels on the panel.
            assert (image[:band, i * width:(i + 1) * width] > 128).any() if band else covered > 0
    assert caption_layout(36)[1] > 0 and caption_layout(144)[1] == 0  # small frames: a band; large: on the frame
