"""Reference points for the generation suites: what a trivial "model" scores.

``identity`` returns its input image resized to ``size``×``size`` (LANCZOS, as the
healthgpt-8bit protocol resizes references): on reconstruction it must score SSIM 1, which checks
the protocol end to end. ``bicubic`` upsamples the (low-resolution) input to ``size``×``size``
with bicubic interpolation: the classic super-resolution baseline any model must beat. Both
return uint8 RGB arrays. (The ``random`` model returns noise.)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

from healthbench.core.catalog import MODELS
from healthbench.models.base import Model
from healthbench.core.types import Request, Response


class _Resample(Model):
    capabilities = frozenset({"image"})
    default_batch_size = 32
    batch_invariant = True  # per-request computation only
    method: Image.Resampling = Image.Resampling.LANCZOS

    def __init__(self, size: int = 256) -> None:
        self.size = size

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            if not request.images:
                out.append(Response(error="no input image to transform"))
                continue
            image = request.images[0].convert("RGB").resize((self.size, self.size), self.method)
            out.append(Response(image=np.asarray(image, dtype=np.uint8)))
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "image baseline", "size": self.size}


@MODELS.register("identity")
class IdentityModel(_Resample):
    """Returns the input image, resized to size×size with LANCZOS."""

    method = Image.Resampling.LANCZOS


@MODELS.register("bicubic")
class BicubicModel(_Resample):
    """Upsamples the input image to size×size with bicubic interpolation."""

    method = Image.Resampling.BICUBIC
