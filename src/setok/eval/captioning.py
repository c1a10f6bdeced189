"""Captioning scores: CIDEr-D, BLEU-4 and ROUGE-L over a whole split (NoCaps, Flickr30K; SPEC §5.1).

The rule: captions are PTB-tokenised and lower-cased with punctuation removed (the COCO caption evaluation
code, ``pycocoevalcap``), then scored over the *whole split at once*. CIDEr-D weights each n-gram (n = 1..4)
by TF-IDF, where the document frequencies come from the references of the whole split, so the score of one
caption depends on every other image of the split: scoring images one at a time, or a subset, gives different
numbers (a single image gets CIDEr 0, since every n-gram then has idf log(1/1) = 0). pycocoevalcap's ``Cider``
is the CIDEr-D variant (clipped counts, Gaussian length penalty with sigma = 6, x10). We report CIDEr x 100,
as the papers print it.

Tokenisation: the official Stanford PTB tokenizer needs Java. Without ``java`` on the PATH we fall back to a
simple regex tokenizer (lower-case, split off punctuation, drop the official punctuation tokens); the result
is then labelled ``tokenizer: "fallback-regex (not PTB)"`` because it shifts scores slightly. SPICE is never
run.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from setok.eval.common import check_pairs

log = logging.getLogger(__name__)

PTB_LABEL = "ptb (stanford corenlp 3.4.1, java)"
FALLBACK_LABEL = "fallback-regex (not PTB)"
# Tokens the official wrapper drops after PTB tokenisation.
PTB_PUNCTUATION = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
                   "--", "...", ";"}
# PTB splits clitics ("do n't", "it 's") and spells brackets as -lrb- etc. (lower-cased, so never dropped).
_TOKEN = re.compile(r"[a-z0-9]+(?=n't)|n't|'[a-z]+|[a-z0-9]+(?:[-.][a-z0-9]+)*|\.\.\.|--|[^\sa-z0-9]")
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}


def fallback_tokenize(text: str) -> str:
    """PTB-like tokens without Java: lower-case, split words and punctuation, drop punctuation tokens."""
    words = _TOKEN.findall(text.replace("\n", " ").lower())
    return " ".join(_BRACKETS.get(w, w) for w in words if w not in PTB_PUNCTUATION)


def tokenize(captions: Mapping[Any, Sequence[str]],
             tokenizer: str = "auto") -> tuple[dict[Any, list[str]], str]:
    """Tokenise ``{id: [captions]}``; returns the tokenised captions and the label of the tokenizer used.

    ``tokenizer`` is ``"ptb"`` (Java required), ``"fallback"`` or ``"auto"``
    (PTB when ``java`` is on the PATH).
    """
    if tokenizer not in ("auto", "ptb", "fallback"):
        raise ValueError(f"tokenizer must be 'auto', 'ptb' or 'fallback' (got {tokenizer!r})")
    has_java = shutil.which("java") is not None
    if tokenizer == "ptb" and not has_java:
        raise FileNotFoundError("tokenizer='ptb' needs a 'java' executable on the PATH (none found)")
    if tokenizer == "fallback" or (tokenizer == "auto" and not has_java):
        if tokenizer == "auto":
            log.warning("java not found: captions are tokenised with %s; CIDEr is not exactly comparable",
                        FALLBACK_LABEL)
        return {k: [fallback_tokenize(c) for c in v] for k, v in captions.items()}, FALLBACK_LABEL
    return _ptb_tokenize(captions), PTB_LABEL


def _ptb_tokenize(captions: Mapping[Any, Sequence[str]]) -> dict[Any, list[str]]:
    """Run the Stanford PTB tokenizer that ships with pycocoevalcap, as its wrapper does, but quietly.

    Same jar and flags as ``pycocoevalcap/tokenizer/ptbtokenizer.py`` (one caption per line, ``-preserveLines
    -lowerCase``, then the punctuation tokens dropped); the input goes through a private temporary file instead
    of one written next to the jar, and the tokenizer's progress line on stderr is captured.
    """
    import subprocess
    import tempfile
    from pathlib import Path

    import pycocoevalcap.tokenizer.ptbtokenizer as ptb

    jar = Path(ptb.__file__).with_name(ptb.STANFORD_CORENLP_3_4_1_JAR)
    keys = [k for k, v in captions.items() for _ in v]
    lines = [c.replace("\n", " ").replace("\r", " ") for v in captions.values() for c in v]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "captions.txt"
        src.write_text("\n".join(lines))
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
               str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    out_lines = proc.stdout.split("\n")
    if len(out_lines) < len(lines):
        raise RuntimeError(f"PTB tokenizer returned {len(out_lines)} lines for {len(lines)} captions")
    out: dict[Any, list[str]] = {}
    for k, line in zip(keys, out_lines, strict=False):
        out.setdefault(k, []).append(" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION))
    return out


def score_captions(predictions: Mapping[Any, str], references: Mapping[Any, Sequence[str]],
                   tokenizer: str = "auto") -> dict[str, Any]:
    """CIDEr-D, BLEU-4 and ROUGE-L (each x100) of one caption per image against its reference captions.

    Args:
        predictions: image id -> generated caption (non-empty).
        references: image id -> list of reference captions (at least one each).
        tokenizer: ``"auto"`` | ``"ptb"`` | ``"fallback"`` (see :func:`tokenize`).
    Returns:
        ``{"CIDEr", "BLEU-4", "ROUGE-L", "n_images", "tokenizer"}``.
    """
    ids = check_pairs(predictions, references, "captioning")
    for i in ids:
        refs = references[i]
        if isinstance(refs, str) or not isinstance(refs, Sequence) or len(refs) == 0:
            raise ValueError(f"captioning: references for image {i!r} must be a non-empty list of captions "
                             f"(got {refs!r})")
        if any(not isinstance(r, str) or not r.strip() for r in refs):
            raise ValueError(f"captioning: image {i!r} has an empty or non-string reference caption")
    if len(ids) < 2:
        raise ValueError(f"captioning: CIDEr needs the whole split (document frequencies over images); got "
                         f"{len(ids)} image")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    # Internal keys 0..n-1: the PTB wrapper and the scorers want hashable, sortable keys of one type.
    keys = {i: k for k, i in enumerate(ids)}
    gts, label = tokenize({keys[i]: list(references[i]) for i in ids}, tokenizer)
    res, _ = tokenize({keys[i]: [predictions[i]] for i in ids}, tokenizer)
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    return {"CIDEr": 100.0 * float(cider), "BLEU-4": 100.0 * float(bleu[3]), "ROUGE-L": 100.0 * float(rouge),
            "n_images": len(ids), "tokenizer": label}
