"""Size limits checked before anything is allocated, so a hostile or broken file cannot exhaust memory."""
from __future__ import annotations

import os

from trainwell.errors import UserError

# Largest decoded data set we accept, in bytes (override with TRAINWELL_MAX_BYTES).
MAX_BYTES = int(os.environ.get("TRAINWELL_MAX_BYTES", 8 * 2**30))
# Largest single image, in pixels (a 8k x 8k photo); decompression bombs are far larger.
MAX_IMAGE_PIXELS = 64 * 2**20
# A compressed member that claims to expand more than this ratio is refused (zip bomb).
MAX_COMPRESSION_RATIO = 2000


def check_bytes(path: str, nbytes: int, what: str) -> None:
    if nbytes > MAX_BYTES:
        raise UserError(
            f"{path}: {what} would need {nbytes / 2**30:.1f} GiB, over the {MAX_BYTES / 2**30:.1f} GiB limit; "
            "the file is corrupt or too large (raise TRAINWELL_MAX_BYTES if it is genuine)")


def file_error(path: str, problem: str, fix: str = "check the file or re-create it") -> UserError:
    return UserError(f"{path}: {problem}; {fix}")
