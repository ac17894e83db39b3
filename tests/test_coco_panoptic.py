"""The coco-panoptic label space and its conversions to SPADE-COCO's coco-stuff and to ADE20K."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chain.labels import ADE20K, COCO_PANOPTIC, COCO_PANOPTIC_CATEGORY_IDS, COCO_STUFF, VOC, conversion, get_label_space
from chain.labels.coco_panoptic import DATA_FILE, MERGED, UNMAPPED_IN_ADE20K
from chain.labels.model_space import model_label_space

# NVlabs SPADE reads COCO-Stuff label maps as COCO-Stuff id - 1 (its cocostuff labels.txt ids,
# e.g. 39 baseball bat, 140 pavement, 154 sand, 159 snow); these are the ids its generator knows.
SPADE_COCO_IDS = {"person": 0, "fire hydrant": 10, "baseball bat": 38, "surfboard": 41, "teddy bear": 87,
                  "pavement": 139, "sand": 153, "snow": 158}


def test_the_space_holds_the_133_official_categories_and_an_unlabeled_fallback() -> None:
    categories = json.loads(DATA_FILE.read_text())["categories"]
    assert len(categories) == 133 and sum(c["isthing"] for c in categories) == 80
    assert len(COCO_PANOPTIC) == 134 and COCO_PANOPTIC.names[-1] == "unlabeled" == COCO_PANOPTIC.fallback
    assert COCO_PANOPTIC.names[0] == "person" and COCO_PANOPTIC.names[132] == "rug-merged"
    assert COCO_PANOPTIC.id_of("snow") == 105 and COCO_PANOPTIC_CATEGORY_IDS[105] == 159
    assert tuple(COCO_PANOPTIC.palette[COCO_PANOPTIC.id_of("person")]) == (220, 20, 60)
    assert tuple(COCO_PANOPTIC.palette[-1]) == (0, 0, 0)
    assert len({tuple(c) for c in COCO_PANOPTIC.palette}) == 134  # the palette segmenter needs one colour per class
    assert get_label_space("coco_panoptic") is COCO_PANOPTIC
    assert set(MERGED) == {n for n in COCO_PANOPTIC.names if n.endswith("-merged")}


@pytest.mark.parametrize("name, spade_id", SPADE_COCO_IDS.items())
def test_the_blogs_classes_reach_the_ids_spade_coco_uses(name: str, spade_id: int) -> None:
    lut = conversion(COCO_PANOPTIC, COCO_STUFF).lut
    assert lut[COCO_PANOPTIC.id_of(name)] == spade_id
    assert COCO_STUFF.names[spade_id] == name


def test_every_class_reaches_coco_stuff_and_unmerged_ones_keep_their_coco_id() -> None:
    convert = conversion(COCO_PANOPTIC, COCO_STUFF)
    assert convert.unmapped == ()
    for label_id, name in enumerate(COCO_PANOPTIC.names[:133]):
        target = COCO_STUFF.names[convert.lut[label_id]]
        if name in MERGED:
            assert target == MERGED[name][0]
        else:  # COCO panoptic kept COCO's and COCO-Stuff's ids for every class it did not merge
            assert convert.lut[label_id] == COCO_PANOPTIC_CATEGORY_IDS[label_id] - 1, name
        assert target not in COCO_STUFF.unused
    assert convert.lut[COCO_PANOPTIC.fallback_id] == COCO_STUFF.fallback_id


def test_merged_classes_go_to_the_member_the_table_names() -> None:
    convert = conversion(COCO_PANOPTIC, COCO_STUFF)
    destinations = {name: COCO_STUFF.names[convert.lut[COCO_PANOPTIC.id_of(name)]] for name in MERGED}
    assert destinations["grass-merged"] == "grass" and destinations["sky-other-merged"] == "sky-other"
    assert destinations["pavement-merged"] == "pavement" and destinations["tree-merged"] == "tree"
    # and back: the members COCO panoptic merged land on their merged class
    back = conversion(COCO_STUFF, COCO_PANOPTIC)
    for stuff, merged in (("moss", "grass-merged"), ("floor-stone", "pavement-merged"), ("clouds", "sky-other-merged"),
                          ("carpet", "rug-merged"), ("skyscraper", "building-other-merged")):
        assert COCO_PANOPTIC.names[back.lut[COCO_STUFF.id_of(stuff)]] == merged


def test_every_class_reaches_ade20k_or_is_unmapped_on_purpose() -> None:
    convert = conversion(COCO_PANOPTIC, ADE20K)
    assert set(convert.unmapped) == UNMAPPED_IN_ADE20K
    mapped = {name: ADE20K.names[convert.lut[i]] for i, name in enumerate(COCO_PANOPTIC.names[:133])
              if name not in UNMAPPED_IN_ADE20K}
    assert "other" not in mapped.values()
    assert mapped["sky-other-merged"] == "sky" and mapped["pavement-merged"] == "sidewalk"
    assert mapped["person"] == "person" and mapped["teddy bear"] == "plaything" and mapped["sand"] == "sand"


def test_voc_and_ade20k_labels_convert_into_coco_panoptic() -> None:
    assert conversion(VOC, COCO_PANOPTIC).unmapped == ()
    ade = conversion(ADE20K, COCO_PANOPTIC)
    for source, target in (("grass", "grass-merged"), ("sky", "sky-other-merged"), ("person", "person"),
                           ("sidewalk", "pavement-merged"), ("wall", "wall-other-merged")):
        assert COCO_PANOPTIC.names[ade.lut[ADE20K.id_of(source)]] == target


def test_a_model_id2label_finds_its_built_in_space_or_gets_its_own() -> None:
    hf_ade = ["bed " if n == "bed" else n for n in ADE20K.names[:150]]  # the Hub's ADE20K id2label spelling
    assert model_label_space(hf_ade, name="m")[0] is ADE20K
    space, table = model_label_space(list(COCO_PANOPTIC.names[:133]), name="m")
    assert space is COCO_PANOPTIC and np.array_equal(table, np.arange(133))
    # OneFormer's COCO config spells some merged classes with bare words (two are just "wall")
    short = list(COCO_PANOPTIC.names[:133])
    short[112], short[131], short[116] = "wall", "wall", "tree"
    assert model_label_space(short, name="m")[0] is COCO_PANOPTIC
    space, table = model_label_space(["Snow", "lightsaber", "salt flat"], name="hf:mine")
    assert space.name == "hf:mine" and space.names == ("Snow", "lightsaber", "salt flat", "unlabeled")
    assert space.fallback == "unlabeled" and list(table) == [0, 1, 2]
    to_coco = conversion(space, COCO_STUFF)  # by name, like any other space
    assert to_coco.lut[0] == SPADE_COCO_IDS["snow"] and to_coco.unmapped == ("lightsaber", "salt flat")
