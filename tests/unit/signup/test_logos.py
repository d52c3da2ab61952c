"""Logo uploads: only PNG/JPEG, re-encoded (metadata gone), scaled, size-limited; SVG refused."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from services.signup import logos


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_png_with_transparency_stays_png_with_alpha():
    logo = logos.reencode(encode(Image.new("RGBA", (120, 40), (255, 0, 0, 128)), "PNG"))
    assert logo.content_type == "image/png" and (logo.width, logo.height) == (120, 40)
    assert decode(logo.data).mode == "RGBA"
    assert len(logo.digest) == 64


def test_palette_png_with_a_transparent_colour_keeps_it():
    image = Image.new("P", (10, 10), 0)
    image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    logo = logos.reencode(encode(image, "PNG", transparency=0))
    assert decode(logo.data).mode == "RGBA"


def test_jpeg_stays_jpeg_without_its_metadata_and_is_turned_upright():
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010E] = "private note"
    logo = logos.reencode(encode(image, "JPEG", exif=exif.tobytes()))
    assert logo.content_type == "image/jpeg"
    assert (logo.width, logo.height) == (20, 60)
    assert b"private note" not in logo.data and not decode(logo.data).getexif()


def test_large_images_are_scaled_into_the_box_keeping_their_aspect():
    logo = logos.reencode(encode(Image.new("RGB", (4000, 1000), "white"), "PNG"))
    assert (logo.width, logo.height) == (800, 200)


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg_not_allowed"),
    (b"\xef\xbb\xbf  <?xml version='1.0'?><svg/>", "svg_not_allowed"),
    (b"<!DOCTYPE svg><svg/>", "svg_not_allowed"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "unsupported_format"),
    (b"%PDF-1.7", "unsupported_format"),
    (b"\x89PNG\r\n\x1a\n garbage", "unreadable"),
    (b"\xff\xd8\xff\xe0 garbage", "unreadable"),
])
def test_refused_uploads(data, code):
    with pytest.raises(logos.LogoError) as caught:
        logos.reencode(data)
    assert caught.value.code == code and caught.value.message


def test_webp_and_gif_images_are_refused_even_when_well_formed():
    for fmt in ("GIF", "WEBP", "BMP"):
        with pytest.raises(logos.LogoError) as caught:
            logos.reencode(encode(Image.new("RGB", (5, 5)), fmt))
        assert caught.value.code == "unsupported_format"


def test_uploads_over_the_limit_are_refused_before_decoding():
    with pytest.raises(logos.LogoError) as caught:
        logos.reencode(b"\x89PNG" + b"\x00" * logos.MAX_UPLOAD_BYTES)
    assert caught.value.code == "too_large"


def test_decompression_bombs_are_refused_from_the_header():
    bomb = encode(Image.new("1", (10_000, 10_000)), "PNG")  # small file, 100 Mpx
    assert len(bomb) < logos.MAX_UPLOAD_BYTES
    with pytest.raises(logos.LogoError) as caught:
        logos.reencode(bomb)
    assert caught.value.code == "too_many_pixels"


def test_a_polyglot_keeps_only_its_pixels():
    payload = b"<script>alert(1)</script>"
    data = encode(Image.new("RGB", (8, 8), "red"), "PNG") + payload
    assert payload not in logos.reencode(data).data
