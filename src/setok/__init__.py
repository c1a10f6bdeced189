"""SeTok: semantic-equivalent vision tokenization (arXiv 2406.05127v1), a reference implementation.

The package mirrors the pipeline: ``data`` -> ``clustering`` / ``merger`` / ``tokenizer`` -> ``decoders`` ->
``mllm`` -> ``train`` -> ``eval`` -> ``book`` (runner) and ``cli``. Imports point only downstream.
"""

__version__ = "0.1.0"

PROFILES = ("smoke", "mini", "paper")
