"""Raw text -> entities with exact character offsets, from an exported model directory.

Imports the text and model layers only (torch, transformers, the segmenter), so a
service that predicts installs nothing that training, Label Studio or plotting need.
"""

from ..model.artifact import ModelLoadError
from .model import Entity, NerModel, load_model, predict

__all__ = ["Entity", "ModelLoadError", "NerModel", "load_model", "predict"]
