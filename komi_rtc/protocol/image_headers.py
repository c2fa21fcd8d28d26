"""Image and video frame sizes read from their headers, so an oversized picture is refused
before a decoder allocates it (a 20000x20000 JPEG is 6 MB on the wire and 1.2 GB decoded)."""

from __future__ import annotations

# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic ...);
# 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but are not frame headers
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header; None when it is not a readable JPEG."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def vp8_keyframe_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 keyframe (RFC 6386 9.1); None for an inter frame."""
    if len(data) < 10 or data[0] & 1:
        return None
    if data[3:6] != b"\x9d\x01\x2a":
        return None
    width = (data[6] | (data[7] << 8)) & 0x3FFF
    height = (data[8] | (data[9] << 8)) & 0x3FFF
    return width, height
