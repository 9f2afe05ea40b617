# Copyright 2026 The relcon-hf authors. Licensed under the Apache License, Version 2.0.
"""Hugging Face Hub tooling: model cards, publishing, the local Hub cache and conversion of reference checkpoints."""

from .cache import add_to_hub_cache
from .convert import convert_checkpoint, convert_state_dict, load_reference_state_dict
from .model_card import load_evaluation_results, write_model_card
from .push import HubPushError, check_checkpoint_folder, push_checkpoint


__all__ = [
    "HubPushError",
    "add_to_hub_cache",
    "check_checkpoint_folder",
    "convert_checkpoint",
    "convert_state_dict",
    "load_evaluation_results",
    "load_reference_state_dict",
    "push_checkpoint",
    "write_model_card",
]
