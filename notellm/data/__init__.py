"""The data layer: import notes and behaviour logs, validate them, mine related pairs, split by note.

Flow (one module per step): readers.py (CSV/JSONL/Parquet) -> validate.py (rejects with reasons) ->
importing.py / stackexchange.py (write a data folder; artifacts.py does the atomic writes and the manifest) ->
mining.py (s(A→B) = Σ 1/N_u, bounds, top t) -> splits.py (train/val/test by note) -> prepare.py (mine + split +
write). stats.py summarises a folder. Other areas use the API in store.py; the format is in docs/data.md.
"""
