"""Training stages (SPEC §3): ``stage1`` (tokenizer pretraining) and its CLI (``setok train stage1``)."""
