"""Training: the run config, backbones (pretrained or tiny offline), the datasets, the
warm-start feature CRF, the Trainer loop, evaluation and export. Needs the `[train]`
extra (datasets, seqeval, accelerate)."""
