"""Label spaces, conversions between them and --remap rules."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chain.errors import ChainError
from chain.labels import (
    ADE20K,
    ADE20K_CONTROLNET_PALETTE,
    CAMVID,
    CITYSCAPES,
    CITYSCAPES_TO_TRAIN,
    CITYSCAPES_TRAIN,
    COCO_STUFF,
    EQUIVALENT,
    LABEL_SPACES,
    STAND_INS,
    VOC,
    LabelSpace,
    conversion,
    describe_remap,
    get_label_space,
    normalize_name,
    parse_remap,
    register_label_space,
    remap_table,
)

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).parents[1].parent / "shared")


def mapping(source: LabelSpace, target: LabelSpace) -> dict[str, str]:
    conv = conversion(source, target)
    return {name: target.names[conv.lut[i]] for i, name in enumerate(source.names)}


@pytest.mark.parametrize(
    ("space", "size", "fallback_id"),
    [(VOC, 21, 0), (COCO_STUFF, 183, 182), (ADE20K, 151, 150), (CITYSCAPES, 35, 0),
     (CITYSCAPES_TRAIN, 20, 19), (CAMVID, 12, 11)],
)
def test_sizes_and_fallbacks(space: LabelSpace, size: int, fallback_id: int) -> None:
    assert len(space) == size
    assert space.fallback_id == fallback_id
    assert len({normalize_name(n) for n in space.names}) == size


@pytest.mark.parametrize("space", list(LABEL_SPACES.values()), ids=list(LABEL_SPACES))
def test_palettes_are_unique(space: LabelSpace) -> None:
    assert space.palette.shape == (len(space), 3)
    assert len(np.unique(space.palette, axis=0)) == len(space)


def test_known_ids_and_colours() -> None:
    assert VOC.id_of("person") == 15 and VOC.id_of("tvmonitor") == 20
    assert tuple(VOC.palette[15]) == (192, 128, 128)
    # COCO-Stuff ids are the official ones minus one; 11 unused thing ids keep their place.
    assert COCO_STUFF.names[:3] == ("person", "bicycle", "car")
    assert COCO_STUFF.id_of("street sign") == 11 and COCO_STUFF.id_of("hair brush") == 90
    assert COCO_STUFF.names[91] == "banner" and COCO_STUFF.names[181] == "wood"
    assert COCO_STUFF.id_of("sky") == COCO_STUFF.id_of("sky-other") == 156
    assert ADE20K.id_of("flag") == 149 and ADE20K.id_of("skyscraper") == 48
    assert tuple(ADE20K.palette[0]) == (120, 120, 120) and tuple(ADE20K.palette[4]) == (4, 200, 3)
    np.testing.assert_array_equal(ADE20K.palette[:48], ADE20K_CONTROLNET_PALETTE[:48])
    np.testing.assert_array_equal(ADE20K.palette[49:150], ADE20K_CONTROLNET_PALETTE[49:])
    assert CITYSCAPES.id_of("license plate") == 34 and CITYSCAPES.id_of("bicycle") == 33
    assert tuple(CITYSCAPES.palette[CITYSCAPES.id_of("car")]) == (0, 0, 142)
    assert CAMVID.names[6] == "sign symbol" and CAMVID.id_of("signsymbol") == 6


def test_cityscapes_train_table() -> None:
    assert CITYSCAPES_TO_TRAIN.shape == (35,)
    for label_id, train_id in enumerate(CITYSCAPES_TO_TRAIN):
        if train_id != 19:
            assert CITYSCAPES_TRAIN.names[train_id] == CITYSCAPES.names[label_id]
    assert sum(CITYSCAPES_TO_TRAIN != 19) == 19
    conv = conversion(CITYSCAPES, CITYSCAPES_TRAIN)
    assert mapping(CITYSCAPES, CITYSCAPES_TRAIN)["parking"] == "ignore"  # official, not "road"
    np.testing.assert_array_equal(conv.lut, CITYSCAPES_TO_TRAIN)


def test_ade_names_match_the_shared_model_labels() -> None:
    labels = SHARED / "weights" / "deeplabv3_mnv2_ade20k_513.labels.txt"
    if not labels.exists():
        pytest.skip(f"shared data not found at {SHARED} (set CHAIN_SHARED)")
    rows = [line.split("\t") for line in labels.read_text().splitlines() if line.strip()]
    # labels.txt numbers classes from 1 (0 is "other") and keeps only each name's first word.
    assert [int(number) for number, _ in rows] == list(range(1, 151))
    assert [word for _, word in rows] == [n.split()[0] for n in ADE20K.names[:150]]


def test_registry() -> None:
    assert get_label_space("coco") is COCO_STUFF
    assert get_label_space("ADE") is ADE20K
    assert get_label_space("pascal") is VOC and get_label_space("voc21") is VOC
    assert get_label_space(CAMVID) is CAMVID
    with pytest.raises(ChainError, match="did you mean 'cityscapes'"):
        get_label_space("citiscapes")
    custom = LabelSpace("test-two", ("nothing", "thing"), np.array([[0, 0, 0], [1, 1, 1]]), "nothing")
    try:
        assert register_label_space(custom, aliases=("t2",)) is custom
        assert get_label_space("t2") is custom
        with pytest.raises(ValueError):
            register_label_space(LabelSpace("voc", ("x",), np.zeros((1, 3)), "x"))
    finally:
        LABEL_SPACES.pop("test-two")


def test_synonym_table_names_are_normalised_and_groups_disjoint() -> None:
    seen: set[str] = set()
    for group in EQUIVALENT:
        for name in group:
            assert name == normalize_name(name)
            assert name not in seen
            seen.add(name)
    for name, stand_ins in STAND_INS.items():
        assert name == normalize_name(name) and all(s == normalize_name(s) for s in stand_ins)


def test_voc_to_coco_stuff_maps_every_object_class() -> None:
    expected = {
        "aeroplane": "airplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat",
        "bottle": "bottle", "bus": "bus", "car": "car", "cat": "cat", "chair": "chair",
        "cow": "cow", "diningtable": "dining table", "dog": "dog", "horse": "horse",
        "motorbike": "motorcycle", "person": "person", "pottedplant": "potted plant",
        "sheep": "sheep", "sofa": "couch", "train": "train", "tvmonitor": "tv",
        "background": "unlabeled",
    }
    assert mapping(VOC, COCO_STUFF) == expected
    assert conversion(VOC, COCO_STUFF).unmapped == ()


def test_voc_to_ade20k() -> None:
    got = mapping(VOC, ADE20K)
    assert got["person"] == "person" and got["car"] == "car"
    assert got["tvmonitor"] == "television receiver"
    assert got["aeroplane"] == "airplane" and got["motorbike"] == "minibike"
    assert got["pottedplant"] == "plant" and got["sofa"] == "sofa"
    assert got["diningtable"] == "table" and got["dog"] == "animal"
    assert got["background"] == "other"


def test_ade20k_to_coco_stuff_avoids_unused_ids() -> None:
    got = mapping(ADE20K, COCO_STUFF)
    assert got["door"] == "door-stuff" and got["windowpane"] == "window-other"
    assert got["mirror"] == "mirror-stuff" and got["desk"] == "desk-stuff"
    assert got["television receiver"] == "tv" and got["plant"] == "plant-other"
    assert got["sky"] == "sky-other" and got["sea"] == "sea" and got["water"] == "water-other"
    assert got["minibike"] == "motorcycle" and got["sofa"] == "couch"
    conv = conversion(ADE20K, COCO_STUFF)
    assert not set(conv.lut.tolist()) & COCO_STUFF.unused_ids


def test_camvid_to_cityscapes() -> None:
    assert mapping(CAMVID, CITYSCAPES) == {
        "sky": "sky", "building": "building", "pole": "pole", "road": "road",
        "pavement": "sidewalk", "tree": "vegetation", "sign symbol": "traffic sign",
        "fence": "fence", "car": "car", "pedestrian": "person", "bicyclist": "rider",
        "void": "unlabeled",
    }


def test_cityscapes_to_coco_stuff() -> None:
    got = mapping(CITYSCAPES, COCO_STUFF)
    assert got["road"] == "road" and got["sidewalk"] == "pavement"
    assert got["building"] == "building-other" and got["vegetation"] == "tree"
    assert got["terrain"] == "grass" and got["sky"] == "sky-other"
    assert got["rider"] == "person" and got["motorcycle"] == "motorcycle"
    assert got["license plate"] == "car" and got["rail track"] == "railroad"
    assert mapping(CAMVID, COCO_STUFF)["bicyclist"] == "person"  # bicyclist → rider → person


def test_unmapped_lists_classes_sent_to_the_fallback() -> None:
    conv = conversion(VOC, CITYSCAPES)
    assert {"aeroplane", "boat", "sofa", "tvmonitor"} <= set(conv.unmapped)
    assert "background" not in conv.unmapped and "person" not in conv.unmapped
    for name in conv.unmapped:
        assert conv.lut[VOC.id_of(name)] == CITYSCAPES.fallback_id


def test_overrides_and_identity() -> None:
    conv = conversion(VOC, COCO_STUFF, overrides={"background": "grass", "cat": "dog"})
    assert conv.lut[0] == COCO_STUFF.id_of("grass")
    assert conv.lut[VOC.id_of("cat")] == COCO_STUFF.id_of("dog")
    assert conversion(VOC, COCO_STUFF).lut[0] == COCO_STUFF.fallback_id  # cache untouched
    assert "aeroplane" in conversion(VOC, CITYSCAPES, overrides={"boat": "car"}).unmapped
    assert "boat" not in conversion(VOC, CITYSCAPES, overrides={"boat": "car"}).unmapped
    with pytest.raises(ChainError, match="'grss'"):
        conversion(VOC, COCO_STUFF, overrides={"background": "grss"})
    same = conversion(ADE20K, ADE20K)
    assert same.is_identity and same.unmapped == ()
    assert conversion(VOC, COCO_STUFF) is conversion(VOC, COCO_STUFF)


def test_apply_numpy() -> None:
    conv = conversion(VOC, COCO_STUFF)
    labels = np.array([[0, 15], [1, 20]], dtype=np.uint8)
    out = conv.apply(labels)
    assert out.dtype == COCO_STUFF.dtype and out.shape == (2, 2)
    assert [COCO_STUFF.names[i] for i in out.ravel()] == ["unlabeled", "person", "airplane", "tv"]
    # ids outside the source space (a dataset's 255) become the fallback, in any int dtype
    for dtype in (np.uint8, np.int32, np.int64):
        assert conv.apply(np.array([255, 15], dtype=dtype)).tolist() == [182, 0]
    assert conv.apply(np.array([-1])).tolist() == [182]


def test_apply_torch() -> None:
    torch = pytest.importorskip("torch")
    conv = conversion(CAMVID, CITYSCAPES)
    labels = torch.tensor([[0, 9], [10, 255]], dtype=torch.long)
    out = conv.apply(labels)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.long
    assert out.tolist() == [[23, 24], [25, 0]]
    assert conv.apply(labels.to(torch.uint8)).dtype == torch.uint8
    np.testing.assert_array_equal(conv.apply(labels.numpy()), out.numpy())


def test_parse_remap() -> None:
    assert parse_remap(["person=bear,car=boat", " sky = snow "]) == [
        ("person", "bear"), ("car", "boat"), ("sky", "snow")]
    assert parse_remap(["person=bear,"]) == [("person", "bear")]
    for bad in ("person", "person=", "=bear", "a=b=c", "person=bear,car"):
        with pytest.raises(ChainError, match="SRC=DST"):
            parse_remap([bad])


def test_remap_unknown_class_names_it_and_suggests() -> None:
    with pytest.raises(ChainError) as info:
        remap_table(COCO_STUFF, ["person=unicorn"])
    message = str(info.value)
    assert "'unicorn'" in message and "coco-stuff" in message and "did you mean" in message
    assert "\n" not in message
    with pytest.raises(ChainError, match="did you mean 'person'"):
        remap_table(COCO_STUFF, ["persn=bear"])


def test_remap_table_rules() -> None:
    lut = remap_table(COCO_STUFF, ["person=bear,car=boat", "car=bus"])
    assert lut[COCO_STUFF.id_of("person")] == COCO_STUFF.id_of("bear")
    assert lut[COCO_STUFF.id_of("car")] == COCO_STUFF.id_of("bus")  # last rule wins
    assert lut[COCO_STUFF.id_of("tree")] == COCO_STUFF.id_of("tree")
    swap = remap_table(VOC, ["cat=dog,dog=cat"])  # rules apply at once: a swap
    assert swap[VOC.id_of("cat")] == VOC.id_of("dog") and swap[VOC.id_of("dog")] == VOC.id_of("cat")
    assert remap_table(VOC, [("cat", "dog")])[VOC.id_of("cat")] == VOC.id_of("dog")
    assert describe_remap(COCO_STUFF, lut) == ["person → bear", "car → bus"]


def test_remap_wildcard() -> None:
    snow = COCO_STUFF.id_of("snow")
    lut = remap_table(COCO_STUFF, ["person=bear", "*=snow"])
    assert lut[COCO_STUFF.id_of("person")] == COCO_STUFF.id_of("bear")
    others = [i for i in range(len(COCO_STUFF)) if i != COCO_STUFF.id_of("person")]
    assert all(lut[i] == snow for i in others)
    lines = describe_remap(COCO_STUFF, lut)
    assert lines[0] == "person → bear" and lines[1].startswith("181 classes (") and lines[1].endswith("→ snow")
    # "sky" names the class as a source, so the wildcard leaves it to its own rule
    lut = remap_table(ADE20K, ["*=grass,sky=sky"])
    assert lut[ADE20K.id_of("sky")] == ADE20K.id_of("sky") and lut[ADE20K.id_of("road")] == ADE20K.id_of("grass")
