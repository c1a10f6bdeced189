"""Loaders for the paper's real datasets, which read the mini world unchanged (SPEC §6).

Every loader returns :class:`Records` (a sequence of small typed records plus ``.report``), validates each
record and follows ``on_error``: ``"raise"`` fails on the first malformed record with a ValueError naming the
file, the record id and the problem kind; ``"skip"`` drops it and counts it (``records.report.summary()``).

    load_coco_captions / load_coco_instances   COCO 2017 captions_<split>.json / instances_<split>.json
    load_llava_pretrain / load_llava_instruct  blip_laion_cc_sbu_558k.json / llava_v1_5_mix665k.json
    load_instructpix2pix                       <root>/<prompt dir>/prompt.json + <seed>_0.jpg / <seed>_1.jpg
    load_refcoco                               refs(unc|umd|google).p + instances.json
    load_vqa_v2 / load_gqa / load_pope         VQA v2 questions + annotations / GQA balanced / POPE lines
    load_image_text                            CC3M / LAION pairs key.jpg + key.txt|json, folder / tar shards
    load_sa1b                                  SA-1B subset: sa_<n>.jpg + sa_<n>.json (RLE masks)
    load_miniworld / miniworld_paths           all of the above pointed at a mini-world folder (SPEC §6)
"""

from setok.data.loaders.base import (
    PROBLEM_KINDS,
    LoaderConfig,
    LoadReport,
    MalformedRecordError,
    Records,
    loader_config,
)
from setok.data.loaders.coco import (
    CocoAnnotation,
    CocoImage,
    coco_paths,
    load_coco_captions,
    load_coco_instances,
)
from setok.data.loaders.editing import EditRecord, load_instructpix2pix
from setok.data.loaders.imagetext import ImageTextRecord, iter_image_text, load_image_text
from setok.data.loaders.llava import (
    ConversationRecord,
    Turn,
    load_llava,
    load_llava_instruct,
    load_llava_pretrain,
)
from setok.data.loaders.miniworld import load_miniworld, loader_table, miniworld_paths
from setok.data.loaders.refcoco import RefRecord, load_refcoco
from setok.data.loaders.sa1b import load_sa1b
from setok.data.loaders.vqa import GQARecord, POPERecord, VQARecord, load_gqa, load_pope, load_vqa_v2

__all__ = [
    "PROBLEM_KINDS",
    "CocoAnnotation",
    "CocoImage",
    "ConversationRecord",
    "EditRecord",
    "GQARecord",
    "ImageTextRecord",
    "LoadReport",
    "LoaderConfig",
    "MalformedRecordError",
    "POPERecord",
    "Records",
    "RefRecord",
    "Turn",
    "VQARecord",
    "coco_paths",
    "iter_image_text",
    "load_coco_captions",
    "load_coco_instances",
    "load_gqa",
    "load_image_text",
    "load_instructpix2pix",
    "load_llava",
    "load_llava_instruct",
    "load_llava_pretrain",
    "load_miniworld",
    "miniworld_paths",
    "load_pope",
    "load_refcoco",
    "load_sa1b",
    "load_vqa_v2",
    "loader_table",
    "loader_config",
]
