"""Models: the architectures (one module each), their initialisation, and the registry that builds them by
name from a JSON spec (registry.py). Importing this package does not import torch."""
from trainwell.models.registry import (ACTIVATIONS, ARCH_FIELDS, CHOICES, HEADS, INIT_OF, INITS, OUTPUTS, REGISTRY, activation,
                                       build_model, count_params, initialise, is_user_file, model_spec, options_taken,
                                       with_outputs)

__all__ = ["ACTIVATIONS", "ARCH_FIELDS", "CHOICES", "HEADS", "INIT_OF", "INITS", "OUTPUTS", "REGISTRY", "activation", "build_model",
           "count_params", "initialise", "is_user_file", "model_spec", "options_taken", "with_outputs"]
