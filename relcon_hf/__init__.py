# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""relcon-hf: the RelCon motion foundation model for wrist accelerometry on the Hugging Face stack.

Importing this package registers the RelCon classes with the transformers Auto classes, so
`AutoModel.from_pretrained`, `AutoModelForSequenceClassification.from_pretrained` and
`AutoFeatureExtractor.from_pretrained` load RelCon checkpoints without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForSequenceClassification

from .modeling import (
    RelConConfig,
    RelConDistanceConfig,
    RelConDistanceModel,
    RelConFeatureExtractor,
    RelConForSequenceClassification,
    RelConModel,
    RelConPreTrainedModel,
)


__version__ = "0.1.0"


def _register_auto_classes() -> None:
    AutoConfig.register(RelConConfig.model_type, RelConConfig, exist_ok=True)
    AutoConfig.register(RelConDistanceConfig.model_type, RelConDistanceConfig, exist_ok=True)
    AutoModel.register(RelConConfig, RelConModel, exist_ok=True)
    AutoModel.register(RelConDistanceConfig, RelConDistanceModel, exist_ok=True)
    AutoModelForSequenceClassification.register(RelConConfig, RelConForSequenceClassification, exist_ok=True)
    AutoFeatureExtractor.register(RelConConfig, RelConFeatureExtractor, exist_ok=True)
    AutoFeatureExtractor.register(RelConDistanceConfig, RelConFeatureExtractor, exist_ok=True)

    # Saved checkpoints carry `auto_map` and copies of the modeling files, so they also load with
    # `trust_remote_code=True` where relcon_hf is not installed.
    RelConConfig.register_for_auto_class()
    RelConDistanceConfig.register_for_auto_class()
    RelConModel.register_for_auto_class("AutoModel")
    RelConForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    RelConDistanceModel.register_for_auto_class("AutoModel")
    RelConFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")


_register_auto_classes()

__all__ = [
    "RelConConfig",
    "RelConDistanceConfig",
    "RelConDistanceModel",
    "RelConFeatureExtractor",
    "RelConForSequenceClassification",
    "RelConModel",
    "RelConPreTrainedModel",
    "__version__",
]
