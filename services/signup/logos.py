"""Merchant logos: only PNG and JPEG, decoded and re-encoded with Pillow, size-limited.

Re-encoding keeps nothing of the upload but its pixels: no metadata, no embedded profiles or
scripts, no polyglot tricks. SVG is refused outright (it is a document that can carry script,
not an image). The result is at most :data:`MAX_SIZE` pixels and :data:`MAX_STORED_BYTES`.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_STORED_BYTES = 512 * 1024
MAX_SOURCE_PIXELS = 40_000_000  # refuse decompression bombs before decoding
MAX_SIZE = (800, 400)
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


class LogoError(ValueError):
    """Why an upload is refused: a stable ``code`` and its parameters."""

    MESSAGES = {
        "empty": "Upload a PNG or JPEG image.",
        "too_large": "The logo may be at most {max_bytes} bytes.",
        "svg_not_allowed": "SVG logos are not accepted; upload a PNG or JPEG image.",
        "unsupported_format": "Upload a PNG or JPEG image.",
        "too_many_pixels": "The image is too large (at most {max_pixels} pixels).",
        "unreadable": "The image could not be read; upload a PNG or JPEG image.",
    }

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        return self.MESSAGES[self.code].format(**self.params)


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _looks_like_svg(data: bytes) -> bool:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head


def reencode(data: bytes) -> Logo:
    """Validate and re-encode an uploaded logo; raise :class:`LogoError` when refused."""
    if not data:
        raise LogoError("empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LogoError("too_large", max_bytes=MAX_UPLOAD_BYTES)
    if _looks_like_svg(data):
        raise LogoError("svg_not_allowed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as source:
                if source.width * source.height > MAX_SOURCE_PIXELS:
                    raise LogoError("too_many_pixels", max_pixels=MAX_SOURCE_PIXELS)
                source_format = source.format
                image = ImageOps.exif_transpose(source)
                image.load()
    except LogoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LogoError("too_many_pixels", max_pixels=MAX_SOURCE_PIXELS) from None
    except UnidentifiedImageError:
        looks_supported = data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))
        raise LogoError("unreadable" if looks_supported else "unsupported_format") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise LogoError("unreadable") from None
    image.thumbnail(MAX_SIZE)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    out = io.BytesIO()
    if source_format == "PNG" or has_alpha:
        image = image.convert("RGBA" if has_alpha else "RGB")
        image.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        image = image.convert("RGB")
        image.save(out, format="JPEG", quality=88, optimize=True)
        content_type = "image/jpeg"
    encoded = out.getvalue()
    if len(encoded) > MAX_STORED_BYTES:
        raise LogoError("too_large", max_bytes=MAX_STORED_BYTES)
    return Logo(encoded, content_type, image.width, image.height)
