"""Words -> sub-token ids (and the one windowing rule), word features, the CRF head,
decoding, the tagger, and the exported-model format (`artifact.py`). Torch, no
training dependencies."""
