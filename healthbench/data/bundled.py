"""Real medical images shipped inside PyPI packages, for the bundled ``*_sample`` suites.

Nothing here is committed as an image: each picture is read at first use from an installed
package (pydicom's test files and pydicom-data, scikit-image's data, nilearn's MNI152 template)
and written, as PNG, into the sample suite's official layout under the data root. What each image
shows (modality, body part) comes from the image's own metadata (DICOM tags) or from the
package's documentation, so questions about it have known answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

MAX_SIDE = 512  # sample images are downscaled; the suites test plumbing, not fine detail


@dataclass(frozen=True)
class BundledImage:
    key: str
    modality: str  # canonical: CT, MR, X-Ray, US, Fundus, Microscopy
    body_part: str | None  # None where the source does not say
    source: str  # package and file, for provenance in the sample JSON
    read: Callable[[], np.ndarray]


def _dicom(name: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        from pydicom.data import get_testdata_file

        from healthbench.data.images import read_pixels, to_uint8
        from healthbench.core.types import ImageSource

        path = get_testdata_file(name)
        if path is None:
            raise FileNotFoundError(f"pydicom test file {name} is not installed "
                                    "(pip install pydicom-data)")
        pixels = read_pixels(ImageSource(path=Path(path)))
        return pixels if pixels.dtype == np.uint8 and pixels.ndim == 3 else to_uint8(pixels)

    return read


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())

    return read


def _mni152() -> np.ndarray:
    from nilearn.datasets import load_mni152_template

    from healthbench.data.images import to_uint8

    volume = np.asarray(load_mni152_template(resolution=1).get_fdata())
    return to_uint8(np.rot90(volume[:, :, volume.shape[2] // 2]))


BUNDLED_IMAGES: tuple[BundledImage, ...] = (
    BundledImage("ct_small", "CT", None, "pydicom:CT_small.dcm", _dicom("CT_small.dcm")),
    BundledImage("ct_head", "CT", "Head", "pydicom:693_J2KI.dcm", _dicom("693_J2KI.dcm")),
    BundledImage("mr_small", "MR", None, "pydicom:MR_small.dcm", _dicom("MR_small.dcm")),
    BundledImage("mr_shoulder", "MR", "Shoulder", "pydicom-data:MR2_UNCI.dcm",
                 _dicom("MR2_UNCI.dcm")),
    BundledImage("mr_abdomen", "MR", "Abdomen", "pydicom-data:MR-SIEMENS-DICOM-WithOverlays.dcm",
                 _dicom("MR-SIEMENS-DICOM-WithOverlays.dcm")),
    BundledImage("mr_brain_mni152", "MR", "Brain", "nilearn:MNI152 T1 template", _mni152),
    BundledImage("cr_chest", "X-Ray", "Chest", "pydicom-data:RG1_UNCI.dcm", _dicom("RG1_UNCI.dcm")),
    BundledImage("cr_extremity", "X-Ray", "Lower limb", "pydicom-data:RG3_UNCI.dcm",
                 _dicom("RG3_UNCI.dcm")),
    BundledImage("us_lymph_node", "US", "Lymph node", "pydicom:examples_rgb_color.dcm",
                 _dicom("examples_rgb_color.dcm")),
    BundledImage("us_unc", "US", None, "pydicom-data:US1_UNCR.dcm", _dicom("US1_UNCR.dcm")),
    BundledImage("fundus_retina", "Fundus", "Eye", "scikit-image:retina", _skimage("retina")),
    BundledImage("fundus_microaneurysms", "Fundus", "Eye", "scikit-image:microaneurysms",
                 _skimage("microaneurysms")),
    BundledImage("microscopy_ihc", "Microscopy", None, "scikit-image:immunohistochemistry",
                 _skimage("immunohistochemistry")),
)


def save_png(image: BundledImage, path: Path) -> None:
    """Write the image as an 8-bit PNG, longest side at most MAX_SIDE."""
    pil = Image.fromarray(image.read())
    if max(pil.size) > MAX_SIDE:
        pil.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    pil.save(tmp)
    tmp.replace(path)
