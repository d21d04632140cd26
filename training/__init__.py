"""Vietnamese NER on your own news annotations: Label Studio -> PhoBERT -> predict().

`from training import load_model, predict` gives the inference API (torch,
transformers and the segmenter only). It is imported lazily so that the data tools
(`python -m training.stats`) start without loading torch.
"""

__all__ = ["Entity", "ModelLoadError", "NerModel", "load_model", "predict"]


def __getattr__(name: str):
    if name in __all__:
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
