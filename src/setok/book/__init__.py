"""The book: results folders with provenance, the papermill runner and the jupyter-book build."""
