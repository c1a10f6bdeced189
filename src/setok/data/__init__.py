"""Data for SeTok (SPEC §6): the procedural mini world and loaders for the real datasets' formats.

Kept light on purpose: importing ``setok.data`` pulls in nothing heavy; import the sub-packages you need
(``setok.data.miniworld`` for the generator and its torch Dataset, ``setok.data.loaders`` for the readers).
"""
