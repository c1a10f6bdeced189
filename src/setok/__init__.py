"""SeTok: semantic-equivalent vision tokenization (arXiv 2406.05127v1), a reference implementation.

The package mirrors the pipeline: ``data`` -> ``clustering`` / ``merger`` / ``tokenizer`` -> ``decoders`` ->
``mllm`` -> ``train`` -> ``eval`` -> ``book`` (runner) and ``cli``. Imports point only downstream.
"""

import warnings

__version__ = "0.1.0"

# tqdm.auto (imported by the HF libraries) warns in notebooks without ipywidgets; the text bar it falls back to is fine.
warnings.filterwarnings("ignore", message="IProgress not found")

PROFILES = ("smoke", "mini", "paper")
