"""Raw image rows back to pixels a person can look at (the report's pictures, the augmentation preview)."""
from __future__ import annotations

import numpy as np


def display_pixels(raw: np.ndarray, input_scale: float) -> np.ndarray:
    """Raw inputs (C, H, W) -> uint8 (H, W) or (H, W, 3) for display."""
    x = raw.astype(np.float32)
    if input_scale == 1.0:  # float inputs of unknown range: stretch to what the image holds
        x = (x - x.min()) / (x.max() - x.min() + 1e-12) * 255
    else:
        x = x * input_scale * 255
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x[0] if x.shape[0] == 1 else x[:3].transpose(1, 2, 0)
