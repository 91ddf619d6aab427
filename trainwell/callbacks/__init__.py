"""Callbacks: eight hooks, one signature `(self, trainer)`; a plain function f(trainer) runs at each epoch end."""
from trainwell.callbacks.base import EVENTS, Callback
from trainwell.callbacks.early_stopping import EarlyStopping
from trainwell.callbacks.monitor import Monitor
from trainwell.callbacks.progress import Progress

__all__ = ["EVENTS", "Callback", "EarlyStopping", "Monitor", "Progress"]
