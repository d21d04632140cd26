"""Analysis: the tables, figures and HTML pages the notebooks show and
`python -m training.report` writes, built on every layer below (the corpus through the
data readers, models through `predict()`'s path and the training evaluation). Needs the
`[report]` extra (matplotlib); only `figures.py` imports matplotlib, and `corpus.py`
stays free of matplotlib and torch so that `python -m training.stats` can use it on the
base install.
"""
