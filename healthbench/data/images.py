"""Decoding input images: PNG/JPEG, DICOM and NIfTI, bounded and with clear errors.

Runs in the runner's prefetch threads, off the main thread. Every failure is an ``ImageError``
naming the file, so the sample is recorded as an error and the run goes on. A pixel limit guards
against decompression bombs (``HEALTHBENCH_MAX_PIXELS``, default 100 megapixels); a NIfTI
volume (W×H×D within that limit) is read one slice at a time, so reading a slice holds at most
that slice (W×H voxels, 8 bytes each once scaled), never the whole volume.
"""
from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from healthbench.core.types import ImageSource

MAX_PIXELS = int(os.environ.get("HEALTHBENCH_MAX_PIXELS", 100_000_000))
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL raises DecompressionBombError past twice this

_DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


class ImageError(ValueError):
    """An image that cannot be decoded or is too large; the message names the file."""


def _kind(src: ImageSource) -> str:
    if src.path is not None:
        name = src.path.name.lower()
        if name.endswith(_DICOM_SUFFIXES):
            return "dicom"
        if name.endswith(NIFTI_SUFFIXES):
            return "nifti"
        return "raster"
    head = (src.data or b"")[:132]
    return "dicom" if head[128:132] == b"DICM" else "raster"


def read_pixels(src: ImageSource) -> np.ndarray:
    """The image's pixel values in their own range and dtype (HU for CT DICOM, raw for NIfTI).

    2-D (H×W) or colour (H×W×C). Multi-frame DICOM and 3-D NIfTI give the frame/slice that
    ``src.frame`` names, or the middle one.
    """
    try:
        kind = _kind(src)
        if kind == "dicom":
            return _read_dicom(src)
        if kind == "nifti":
            return _read_nifti(src)
        return np.asarray(_open_raster(src))
    except ImageError:
        raise
    except Exception as exc:  # decoders raise many types; all mean "unreadable"
        raise ImageError(f"{src.describe()}: unreadable image ({type(exc).__name__}: {exc})") \
            from exc


def load_image(src: ImageSource) -> Image.Image:
    """An RGB PIL image for a model: raster files as they are, DICOM/NIfTI scaled to 8 bits
    (over ``src.window`` when set, else min..max), then down-scaled by ``src.downscale``."""
    try:
        if _kind(src) == "raster" and src.window is None:
            img = _open_raster(src).convert("RGB")
        else:
            img = Image.fromarray(to_uint8(read_pixels(src), src.window)).convert("RGB")
        if src.downscale > 1:
            size = (max(1, img.width // src.downscale), max(1, img.height // src.downscale))
            img = img.resize(size, Image.Resampling.BICUBIC)
        return img
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{src.describe()}: unreadable image ({type(exc).__name__}: {exc})") \
            from exc


def check_image(src: ImageSource) -> None:
    """Raise ``ImageError`` unless ``src`` exists and has a readable image header within the
    pixel limit. Nothing is decoded: this is the check for models that never look at pixels
    (``Model.needs_pixels``); damage past the header goes unnoticed, as it does not matter there.
    """
    try:
        kind = _kind(src)
        if kind == "dicom":
            import pydicom

            ds = pydicom.dcmread(src.path if src.path is not None else io.BytesIO(src.data or b""),
                                 stop_before_pixels=True)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            _check_pixels(src, int(ds.get("Columns", 0)), int(ds.get("Rows", 0)) * frames)
        elif kind == "nifti":
            import nibabel as nib

            shape = nib.load(str(src.path)).shape
            _check_pixels(src, int(np.prod(shape[:2])),
                          int(np.prod(shape[2:])) if len(shape) > 2 else 1)
        else:
            if _png_size(src) is None:
                _open_raster(src, decode=False)  # PIL decides (and words any error)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{src.describe()}: unreadable image ({type(exc).__name__}: {exc})") \
            from exc


#: Bytes a header check reads from each file (``_png_size``'s read; DICOM/NIfTI headers mostly).
HEADER_BYTES = 4096


def to_uint8(pixels: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Scale ``window`` (default: min..max) to 0..255, clipping outside it; a constant image
    becomes 0. This is how non-8-bit images are shown to models."""
    arr = np.asarray(pixels, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
        arr = arr[..., arr.shape[-1] // 2]
    lo, hi = (np.nanmin(arr), np.nanmax(arr)) if window is None else window
    arr = np.clip(arr, lo, hi)
    scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    return np.nan_to_num(scaled).round().astype(np.uint8)


def _check_pixels(src: ImageSource, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"{src.describe()}: {width}×{height} pixels exceeds the limit of "
                         f"{MAX_PIXELS} (HEALTHBENCH_MAX_PIXELS)")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Chunks allowed between IHDR and IDAT on the quick path, with the least length PIL's handler
#: for each needs; any other chunk (text, ICC profile, palette, animation) goes to PIL.
_PNG_PLAIN_CHUNKS = {b"sRGB": 1, b"gAMA": 4, b"pHYs": 9}


def _png_size(src: ImageSource) -> tuple[int, int] | None:
    """(width, height) of a PNG that PIL's reader is sure to open, from its first 4 KB: the
    signature, an IHDR of 13 bytes with a valid CRC, a bit depth/colour type PIL knows, filter 0
    and a size within the pixel limit, then only sRGB/gAMA/pHYs chunks (valid CRCs) up to the
    first IDAT, which is where PIL stops reading. None for anything else: PIL then opens it as
    before. A third of PIL's cost per image (a pixel-free model's 100k images go through it)."""
    if src.path is None:
        return None
    try:  # os.open/os.read: a quarter of what a Python file object costs for 4 KB
        fd = os.open(src.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            head = os.read(fd, HEADER_BYTES)
        finally:
            os.close(fd)
    except OSError:
        return None
    if not head.startswith(_PNG_SIGNATURE):
        return None
    size = None
    pos = 8
    while pos + 8 <= len(head):
        length, cid = int.from_bytes(head[pos:pos + 4], "big"), head[pos + 4:pos + 8]
        if cid == b"IDAT":
            return size
        if size is None:  # the first chunk: the header
            if cid != b"IHDR" or length != 13:
                return None
        elif length < _PNG_PLAIN_CHUNKS.get(cid, 1 << 32):
            return None
        end = pos + 8 + length
        if end + 4 > len(head):
            return None
        if zlib.crc32(head[pos + 8:end], zlib.crc32(cid)) != int.from_bytes(head[end:end + 4],
                                                                            "big"):
            return None
        if size is None:
            ihdr = head[pos + 8:end]
            width, height = int.from_bytes(ihdr[0:4], "big"), int.from_bytes(ihdr[4:8], "big")
            if not (0 < width * height <= MAX_PIXELS and ihdr[11] == 0
                    and (ihdr[8], ihdr[9]) in PngImagePlugin._MODES):
                return None
            size = (width, height)
        pos = end + 4
    return None


#: File signatures → the PIL plugin that reads them (the usual formats of medical VQA sets).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"))


def _pil_open(fh) -> Image.Image:  # fh: a binary file object
    """``Image.open``, asking first the one plugin the file's signature names: half the cost of
    ``Image.open`` trying each plugin in turn (measured 12 vs 25 µs per PNG). No plugin that
    ``Image.open`` tries before PNG or JPEG accepts these signatures, so a success is the same
    image; a failure falls back to the full search, so errors are ``Image.open``'s own."""
    head = fh.read(8)
    fh.seek(0)
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            try:
                return Image.open(fh, formats=[name])
            except Exception:
                fh.seek(0)
            break
    return Image.open(fh)


def _open_raster(src: ImageSource, decode: bool = True) -> Image.Image:
    try:
        fh = open(src.path, "rb") if src.path is not None else io.BytesIO(src.data or b"")
    except OSError as exc:
        raise ImageError(f"{src.describe()}: cannot open image ({exc.strerror or exc})") from exc
    with fh:
        try:
            img = _pil_open(fh)
            _check_pixels(src, *img.size)
            if decode:
                img.load()  # decode now, inside the error handling, not later in the model
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{src.describe()}: image exceeds the pixel limit ({exc})") from exc
        except ImageError:
            raise
        except Exception as exc:
            raise ImageError(f"{src.describe()}: unreadable image ({type(exc).__name__}: "
                             f"{exc})") from exc
    return img


def _read_dicom(src: ImageSource) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    target = src.path if src.path is not None else io.BytesIO(src.data or b"")
    ds = pydicom.dcmread(target)
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    _check_pixels(src, cols, rows * frames)
    pixels = ds.pixel_array
    if frames > 1:
        index = frames // 2 if src.frame is None else src.frame
        if not 0 <= index < frames:
            raise ImageError(f"{src.describe()}: frame {index} out of range (0..{frames - 1})")
        pixels = pixels[index]
    if ds.get("PhotometricInterpretation", "") in ("MONOCHROME1", "MONOCHROME2"):
        pixels = apply_modality_lut(pixels, ds)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            pixels = pixels.max() - pixels
    return np.asarray(pixels)


def _read_nifti(src: ImageSource) -> np.ndarray:
    import nibabel as nib

    img = nib.load(str(src.path))
    shape = img.shape
    _check_pixels(src, int(np.prod(shape[:2])), int(np.prod(shape[2:])) if len(shape) > 2 else 1)
    if len(shape) < 3:
        return np.asarray(img.dataobj)
    depth = shape[axial_axis(img.affine)[0]]
    index = depth // 2 if src.frame is None else src.frame
    if not 0 <= index < depth:
        raise ImageError(f"{src.describe()}: slice {index} out of range (0..{depth - 1})")
    return axial_slice(img, index)


def axial_axis(affine: np.ndarray) -> tuple[int, bool]:
    """The array axis that runs inferior→superior in nibabel's closest canonical (RAS+)
    orientation of ``affine``, and whether it runs superior→inferior in the file."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    axis = int(np.flatnonzero(ornt[:3, 0] == 2)[0]) if (ornt[:3, 0] == 2).any() else 2
    return axis, bool(ornt[axis, 1] < 0)


def nifti_axial_depth(path: Path) -> int:
    """How many axial slices a NIfTI volume has (1 for a 2-D image), by anatomy, not array axis."""
    import nibabel as nib

    img = nib.load(str(path))
    return int(img.shape[axial_axis(img.affine)[0]]) if len(img.shape) >= 3 else 1


def axial_slice(img, index: int) -> np.ndarray:  # img: nibabel.Nifti1Image
    """Axial slice ``index`` (counted inferior→superior) of the volume reoriented to nibabel's
    closest canonical orientation (``as_closest_canonical``: RAS+), shown with anterior at the
    top and the patient's right on the image's right (neurological convention): ``rot90`` of the
    canonical ``data[:, :, index]``. Only that slice is read (``dataobj`` slicing); extra
    dimensions (time) take their first index.

    Slicing by the affine rather than by array axis means one anatomy stored in two
    orientations gives the same 2-D images."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(img.affine)
    axis, flipped = axial_axis(img.affine)
    depth = img.shape[axis]
    where: list[object] = [slice(None)] * 3 + [0] * (len(img.shape) - 3)
    where[axis] = depth - 1 - index if flipped else index
    plane = np.asarray(img.dataobj[tuple(where)])
    rest = [a for a in range(3) if a != axis]              # the two in-plane array axes
    if ornt[rest[0], 0] > ornt[rest[1], 0]:                 # order them as R (0), A (1)
        plane, rest = plane.T, rest[::-1]
    for k, a in enumerate(rest):
        if ornt[a, 1] < 0:
            plane = np.flip(plane, axis=k)
    return np.rot90(plane)


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + _DICOM_SUFFIXES
                         + NIFTI_SUFFIXES)


def load_output(path: Path) -> np.ndarray:
    """A generated image saved by a run (``results.images.save_output``): PNG or .npy, no pickle."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with Image.open(path) as img:
        return np.asarray(img)
