# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""RelCon model code: the files that ship inside every checkpoint as Hub remote code."""

from .configuration_relcon import RelConConfig, RelConDistanceConfig
from .feature_extraction_relcon import RelConFeatureExtractor
from .modeling_relcon import RelConForSequenceClassification, RelConModel, RelConPreTrainedModel
from .modeling_relcon_distance import RelConDistanceModel, RelConDistancePreTrainedModel


__all__ = [
    "RelConConfig",
    "RelConDistanceConfig",
    "RelConDistanceModel",
    "RelConDistancePreTrainedModel",
    "RelConFeatureExtractor",
    "RelConForSequenceClassification",
    "RelConModel",
    "RelConPreTrainedModel",
]
