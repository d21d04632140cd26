"""Annotations -> validated documents -> BIO sentences and train/dev/test splits.

No torch: the readers, validation and splits run wherever the data tools do.
"""
