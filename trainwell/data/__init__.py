"""Data: sources read files into checked arrays; splits turn them into the train/valid/test tensors."""
from trainwell.data.sources import Source, load_source
from trainwell.data.splits import Preprocess, Splits, make_splits

__all__ = ["Preprocess", "Source", "Splits", "load_source", "make_splits"]
