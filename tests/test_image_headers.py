"""The quick PNG header check (``data.images._png_size``) only ever accepts what PIL opens.

A pixel-free model's images are checked by header (issue 18). For PNGs the header is read
directly; the check must never accept a file that ``PIL.Image.open`` would refuse, and must
give PIL's size. Checked on PNGs of every mode PIL writes, with the usual ancillary chunks,
and on thousands of damaged copies (bytes flipped, cut short, chunks inserted).
"""
from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from healthbench.core.types import ImageSource
from healthbench.data.images import ImageError, _png_size, check_image


def _pngs() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for mode in ("1", "L", "P", "RGB", "RGBA", "LA", "I;16"):
        arr = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
        if mode == "I;16":
            img = Image.fromarray(arr[..., 0].astype(np.uint16) * 200)
        else:
            img = Image.fromarray(arr).convert(mode)
        for kwargs in ({}, {"dpi": (72, 72)}, {"optimize": True}):
            buf = io.BytesIO()
            img.save(buf, format="PNG", **kwargs)
            out.append(buf.getvalue())
    return out


def _chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(
        ">I", zlib.crc32(data, zlib.crc32(cid)))


def _with_chunk(png: bytes, cid: bytes, data: bytes) -> bytes:
    return png[:33] + _chunk(cid, data) + png[33:]  # right after IHDR


def _with_ihdr(png: bytes, offset: int, value: bytes) -> bytes:
    """``png`` with IHDR field bytes at ``offset`` replaced, its checksum made valid again."""
    ihdr = bytearray(png[16:29])
    ihdr[offset:offset + len(value)] = value
    return png[:8] + _chunk(b"IHDR", bytes(ihdr)) + png[33:]


def _pil_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as img:
            return img.size
    except Exception:
        return None


def _variants(rng: random.Random) -> list[bytes]:
    out = []
    for png in _pngs():
        out += [png, _with_chunk(png, b"sRGB", b"\0"), _with_chunk(png, b"gAMA", b"\0\1\x86\xa0"),
                _with_chunk(png, b"sRGB", b""), _with_chunk(png, b"gAMA", b"\0"),
                _with_chunk(png, b"tEXt", b"k\0v"), _with_chunk(png, b"zzzz", b"x"),
                _with_chunk(png, b"pHYs", b"\0" * 8), png[:20], png[:33], png[:41],
                _with_chunk(_with_chunk(png, b"IHDR", png[16:29]), b"sRGB", b"\0")]
        for offset, value in ((0, b"\0\0\0\0"), (4, b"\0\0\0\0"), (8, b"\3"), (9, b"\5"),
                              (9, b"\1"), (10, b"\1"), (11, b"\1"), (12, b"\1"), (12, b"\7"),
                              (0, b"\xff\xff\xff\xff")):
            out.append(_with_ihdr(png, offset, value))
        for _ in range(150):
            damaged = bytearray(png)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(min(64, len(damaged)))
                damaged[i] = rng.choice([0, 255, damaged[i] ^ (1 << rng.randrange(8)),
                                         rng.randrange(256)])
            out.append(bytes(damaged))
    return out


def test_the_quick_check_never_accepts_what_pil_refuses(tmp_path: Path) -> None:
    rng = random.Random(18)
    accepted = refused_by_pil = 0
    for i, data in enumerate(_variants(rng)):
        path = tmp_path / f"{i}.png"
        path.write_bytes(data)
        quick = _png_size(ImageSource(path=path))
        pil = _pil_size(path)
        if quick is not None:
            assert pil == quick, (i, data[:48])
            accepted += 1
        refused_by_pil += pil is None
    assert accepted > 100 and refused_by_pil > 100  # both sides of the check are exercised


@pytest.mark.parametrize("name,data,message", [
    ("garbage.png", b"not an image at all", "unreadable image"),
    ("bad_crc.png", None, "unreadable image"),
])
def test_files_the_quick_check_declines_get_pils_own_error(tmp_path: Path, name: str,
                                                           data: bytes | None,
                                                           message: str) -> None:
    if data is None:
        png = bytearray(_pngs()[3])
        png[29] ^= 1  # IHDR checksum
        data = bytes(png)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message):
        check_image(ImageSource(path=path))
    with pytest.raises(ImageError, match="cannot open image"):
        check_image(ImageSource(path=tmp_path / "absent.png"))


def test_the_pixel_limit_still_applies(tmp_path: Path, monkeypatch) -> None:
    from healthbench.data import images

    path = tmp_path / "big.png"
    path.write_bytes(_pngs()[9])  # 7 × 5
    check_image(ImageSource(path=path))
    monkeypatch.setattr(images, "MAX_PIXELS", 30)
    with pytest.raises(ImageError, match="exceeds the limit of 30"):
        check_image(ImageSource(path=path))
