"""Documents, character spans, label schemas, IOB2 conversions and word segmentation.

The bottom layer: standard library plus the segmenter (underthesea, imported when a
segmenter is first used); no torch.
"""
