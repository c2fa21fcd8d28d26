"""Frame sizes read from VP8 keyframe headers and H.264 sequence parameter sets before any
decoding (issue 26), fuzzed with hypothesis: every header a generator writes is read back
exactly, anything else is refused (None) quickly and never raises, and the size limits
refuse what is above them, whatever the stream claims."""

from __future__ import annotations

import fractions
import time
from dataclasses import dataclass

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from komi_rtc.protocol.image_headers import (
    H264Size,
    h264_access_unit_sizes,
    h264_nal_units,
    h264_sps_size,
    vp8_keyframe_dimensions,
)
from komi_rtc.server.config import ServerConfig
from komi_rtc.server.limits import ImageTooLarge, check_frame_size

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)
DEFAULTS = ServerConfig()


class BitWriter:
    """The writer's half of H.264 7.2: fixed-width fields and exp-Golomb codes."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, width: int, value: int) -> None:
        self.bits += [(value >> (width - 1 - i)) & 1 for i in range(width)]

    def flag(self, value: bool) -> None:
        self.u(1, int(value))

    def ue(self, value: int) -> None:
        width = (value + 1).bit_length()
        self.u(width - 1, 0)
        self.u(width, value + 1)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        bits = self.bits + [1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def with_emulation_prevention(rbsp: bytes) -> bytes:
    """00 00 0x (x <= 3) becomes 00 00 03 0x, as an encoder writes a NAL unit."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class Sps:
    profile_idc: int
    chroma_format_idc: int
    separate_colour_plane: bool
    scaling_lists: tuple[tuple[int, ...] | None, ...]
    pic_order_cnt_type: int
    cycle: tuple[int, ...]
    width_mbs: int
    height_map_units: int
    frame_mbs_only: bool
    crop: tuple[int, int, int, int] | None
    vui: bool
    trailing: bytes

    def nal(self) -> bytes:
        w = BitWriter()
        w.u(8, self.profile_idc)
        w.u(8, 0b01000000)  # constraint_set1_flag
        w.u(8, 31)  # level 3.1
        w.ue(0)  # seq_parameter_set_id
        if self.profile_idc in HIGH_PROFILES:
            w.ue(self.chroma_format_idc)
            if self.chroma_format_idc == 3:
                w.flag(self.separate_colour_plane)
            w.ue(0)
            w.ue(0)  # bit depths
            w.flag(False)  # qpprime_y_zero_transform_bypass_flag
            w.flag(any(lst is not None for lst in self.scaling_lists))
            if any(lst is not None for lst in self.scaling_lists):
                for index, deltas in enumerate(self.scaling_lists):
                    w.flag(deltas is not None)
                    if deltas is None:
                        continue
                    size = 16 if index < 6 else 64
                    last = next_scale = 8
                    for delta in (*deltas, *[0] * size)[:size]:
                        if next_scale == 0:
                            break
                        w.se(delta)
                        next_scale = (last + delta + 256) % 256
                        last = next_scale or last
        w.ue(4)  # log2_max_frame_num_minus4
        w.ue(self.pic_order_cnt_type)
        if self.pic_order_cnt_type == 0:
            w.ue(4)
        elif self.pic_order_cnt_type == 1:
            w.flag(False)
            w.se(-3)
            w.se(5)
            w.ue(len(self.cycle))
            for offset in self.cycle:
                w.se(offset)
        w.ue(3)  # max_num_ref_frames
        w.flag(False)  # gaps_in_frame_num_value_allowed_flag
        w.ue(self.width_mbs - 1)
        w.ue(self.height_map_units - 1)
        w.flag(self.frame_mbs_only)
        if not self.frame_mbs_only:
            w.flag(True)  # mb_adaptive_frame_field_flag
        w.flag(True)  # direct_8x8_inference_flag
        w.flag(self.crop is not None)
        if self.crop is not None:
            for offset in self.crop:
                w.ue(offset)
        w.flag(self.vui)
        body = w.rbsp() + (self.trailing if self.vui else b"")
        return bytes([0x67]) + with_emulation_prevention(body)

    def crop_units(self) -> tuple[int, int]:
        chroma = self.chroma_format_idc if self.profile_idc in HIGH_PROFILES else 1
        fields = 2 - self.frame_mbs_only
        if chroma == 0 or (chroma == 3 and self.separate_colour_plane):
            return 1, fields
        return (1 if chroma == 3 else 2), (2 if chroma == 1 else 1) * fields

    def expected(self) -> H264Size:
        coded_width = self.width_mbs * 16
        coded_height = (2 - self.frame_mbs_only) * self.height_map_units * 16
        left, right, top, bottom = self.crop or (0, 0, 0, 0)
        unit_x, unit_y = self.crop_units()
        return H264Size(
            coded_width - unit_x * (left + right),
            coded_height - unit_y * (top + bottom),
            coded_width,
            coded_height,
        )


@st.composite
def sps_values(draw: st.DrawFn, max_mbs: int = 600) -> Sps:
    profile = draw(st.sampled_from((66, 77, 88, *HIGH_PROFILES)))
    chroma = draw(st.integers(0, 3)) if profile in HIGH_PROFILES else 1
    lists = draw(
        st.lists(
            st.none() | st.lists(st.integers(-128, 127), min_size=1, max_size=64).map(tuple),
            min_size=8 if chroma != 3 else 12,
            max_size=8 if chroma != 3 else 12,
        )
    )
    width_mbs = draw(st.integers(1, max_mbs))
    height = draw(st.integers(1, max_mbs))
    frame_mbs_only = draw(st.booleans())
    separate = chroma == 3 and draw(st.booleans())
    partial = Sps(
        profile,
        chroma,
        separate,
        tuple(lists),
        draw(st.integers(0, 2)),
        tuple(draw(st.lists(st.integers(-1000, 1000), max_size=5))),
        width_mbs,
        height,
        frame_mbs_only,
        None,
        draw(st.booleans()),
        draw(st.binary(max_size=20)),
    )
    if draw(st.booleans()):
        unit_x, unit_y = partial.crop_units()
        coded_width, coded_height = partial.expected().coded_width, partial.expected().coded_height
        horizontal = draw(st.integers(0, (coded_width - 1) // unit_x))
        vertical = draw(st.integers(0, (coded_height - 1) // unit_y))
        left = draw(st.integers(0, horizontal))
        top = draw(st.integers(0, vertical))
        return Sps(**{**partial.__dict__, "crop": (left, horizontal - left, top, vertical - top)})
    return partial


@FUZZ
@given(sps_values())
def test_every_sps_a_writer_makes_is_read_back_exactly(sps: Sps) -> None:
    assert h264_sps_size(sps.nal()) == sps.expected()
    # as an access unit in Annex B, beside a PPS and a slice, after a 3- or 4-byte start code
    unit = b"\x00\x00\x00\x01" + sps.nal() + b"\x00\x00\x01\x68\xce\x38\x80\x00\x00\x01\x65\x88"
    assert h264_access_unit_sizes(unit) == [sps.expected()]


@FUZZ
@given(sps_values(), st.data())
def test_a_cut_or_damaged_sps_is_refused_or_read_never_raises(sps: Sps, data: st.DataObject):
    nal = bytearray(sps.nal())
    cut = data.draw(st.integers(1, len(nal)))
    for _ in range(data.draw(st.integers(0, 3))):
        nal[data.draw(st.integers(0, len(nal) - 1))] = data.draw(st.integers(0, 255))
    size = h264_sps_size(bytes(nal[:cut]))
    assert size is None or (0 < size.width <= size.coded_width and 0 < size.height)


@FUZZ
@given(st.binary(max_size=2000))
@example(b"\x67" + b"\x00" * 100)  # exp-Golomb prefix beyond 32 bits
@example(b"\x67\x64\x00\x1f" + b"\xff" * 4000)  # every scaling list present, endless
def test_arbitrary_bytes_as_sps_or_access_unit_never_raise(data: bytes) -> None:
    started = time.perf_counter()
    size = h264_sps_size(b"\x67" + data)
    assert size is None or (size.width > 0 and size.height > 0)
    for found in h264_access_unit_sizes(data):
        assert found is None or found.width > 0
    assert time.perf_counter() - started < 0.5


def test_a_huge_sps_costs_what_a_small_one_costs():
    started = time.perf_counter()
    # all ones: every scaling list present, then 16x16 with trailing megabytes
    assert h264_sps_size(b"\x67\x64\x00\x1f" + b"\xff" * 5_000_000) == H264Size(16, 16, 16, 16)
    assert len(h264_access_unit_sizes(b"\x00\x00\x01\x67" + b"\x55" * 5_000_000)) == 1
    assert time.perf_counter() - started < 1.0


def _limits_refuse(width: int, height: int) -> bool:
    try:
        check_frame_size(width, height, DEFAULTS.max_frame_side, DEFAULTS.max_frame_pixels, "v")
    except ImageTooLarge:
        return True
    return False


@FUZZ
@given(sps_values(max_mbs=20_000))
def test_the_limits_refuse_any_sps_above_them_as_coded_or_shown(sps: Sps) -> None:
    """What the camera guard checks (`camera_video_intake._frame_size_guard`): the shown
    and the coded size; cropping cannot hide a coded picture above the limits."""
    size = h264_sps_size(sps.nal())
    assert size == sps.expected()
    coded_above = (
        max(size.coded_width, size.coded_height) > DEFAULTS.max_frame_side
        or size.coded_width * size.coded_height > DEFAULTS.max_frame_pixels
    )
    assert _limits_refuse(size.coded_width, size.coded_height) == coded_above
    if not coded_above:
        assert not _limits_refuse(size.width, size.height)


@st.composite
def vp8_keyframes(draw: st.DrawFn) -> tuple[bytes, int, int]:
    width, height = draw(st.integers(0, 0x3FFF)), draw(st.integers(0, 0x3FFF))
    scale_x, scale_y = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    size = draw(st.integers(0, 0x7FFFF))
    tag = (size << 5) | (1 << 4) | (draw(st.integers(0, 3)) << 1)  # show_frame, version
    header = bytes([tag & 0xFF, (tag >> 8) & 0xFF, (tag >> 16) & 0xFF, 0x9D, 0x01, 0x2A])
    header += (width | scale_x << 14).to_bytes(2, "little")
    header += (height | scale_y << 14).to_bytes(2, "little")
    return header + draw(st.binary(max_size=50)), width, height


@FUZZ
@given(vp8_keyframes())
def test_every_vp8_keyframe_header_is_read_and_limited(keyframe: tuple[bytes, int, int]):
    data, width, height = keyframe
    assert vp8_keyframe_dimensions(data) == (width, height)
    above = max(width, height) > DEFAULTS.max_frame_side or (
        width * height > DEFAULTS.max_frame_pixels
    )
    assert _limits_refuse(width, height) == above
    assert vp8_keyframe_dimensions(bytes([data[0] | 1]) + data[1:]) is None  # an inter frame


@FUZZ
@given(st.binary(max_size=64))
def test_arbitrary_bytes_as_vp8_never_raise(data: bytes) -> None:
    size = vp8_keyframe_dimensions(data)
    assert size is None or (0 <= size[0] <= 0x3FFF and 0 <= size[1] <= 0x3FFF)


def _x264_access_unit(width: int, height: int, **options: str) -> bytes:
    """The first access unit libx264 (as OBS and GStreamer's x264enc use it) writes."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = options.pop("pix_fmt", "yuv420p")
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = options
    frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
    frame = frame.reformat(format=codec.pix_fmt)
    frame.pts = 0
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


@pytest.mark.parametrize(
    ("width", "height", "options"),
    [
        (640, 480, {"profile": "baseline"}),
        (640, 360, {"profile": "high"}),  # cropped: 368 coded rows
        (1920, 1080, {"profile": "high"}),
        (642, 362, {"profile": "main"}),
        (320, 240, {"profile": "high444", "pix_fmt": "yuv444p"}),
        (704, 576, {"profile": "high", "x264-params": "interlaced=1"}),  # field coding
    ],
)
def test_real_x264_headers_are_read(width: int, height: int, options: dict[str, str]):
    unit = _x264_access_unit(width, height, **options)
    (size,) = h264_access_unit_sizes(unit)
    assert size is not None and (size.width, size.height) == (width, height), size
    assert size.coded_width % 16 == 0 and size.coded_height % 16 == 0
    assert any(n[0] & 0x1F == 5 for n in h264_nal_units(unit))  # and it starts with an IDR
