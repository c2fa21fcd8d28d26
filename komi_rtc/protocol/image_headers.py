"""Image and video frame sizes read from their headers, so an oversized picture is refused
before a decoder allocates it (a 20000x20000 JPEG is 6 MB on the wire and 1.2 GB decoded):
JPEG frame headers, VP8 keyframe headers and H.264 sequence parameter sets."""

from __future__ import annotations

from dataclasses import dataclass

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


# ------------------------------------------------------------------------------ H.264


H264_NAL_IDR = 5  # a coded slice of an IDR picture: decoding can start here
H264_NAL_SPS = 7
H264_NAL_PPS = 8
# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling matrices
# (ITU-T H.264 7.3.2.1.1)
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_EXP_GOLOMB_ZEROS = 31  # a longer prefix codes a value beyond 32 bits: not a real SPS
# bytes of an SPS read at most: its fields up to the cropping take under 1.7 kB even with
# every scaling matrix (a browser's or x264's SPS is 10 to 40 bytes), so a huge "SPS" costs
# no more than a real one
_MAX_SPS_BYTES = 4096


def h264_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes 00 00 01 or 00 00 00 01), as
    aiortc's depacketizer hands them over."""
    units = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        unit = data[begin:] if end == -1 else data[begin:end]
        if end != -1 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the next start code is 00 00 00 01
        if unit:
            units.append(unit)
        start = end
    return units


@dataclass(frozen=True)
class H264Size:
    """A sequence parameter set's picture size in pixels: `width` x `height` as shown
    (after cropping), `coded_width` x `coded_height` as the decoder allocates it (whole
    16x16 macroblocks)."""

    width: int
    height: int
    coded_width: int
    coded_height: int


class _BitReader:
    """Reads an RBSP (emulation-prevention bytes already removed) bit by bit; raises
    ValueError past its end."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def bits(self, count: int) -> int:
        if count > self._left:
            raise ValueError("the SPS ends early")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)

    def flag(self) -> bool:
        return bool(self.bits(1))

    def ue(self) -> int:
        """An unsigned exp-Golomb code (H.264 9.1)."""
        zeros = 0
        while not self.bits(1):
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise ValueError("an exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code % 2 else -(code // 2)


def _rbsp(nal_payload: bytes) -> bytes:
    """Remove emulation-prevention bytes: 00 00 03 xx -> 00 00 xx (H.264 7.4.1)."""
    return nal_payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = reader.se()
            if not -128 <= delta <= 127:
                raise ValueError("delta_scale out of range")
            next_scale = (last + delta + 256) % 256
        last = next_scale if next_scale != 0 else last


def h264_sps_size(nal: bytes) -> H264Size | None:
    """The picture size a sequence parameter set NAL unit (header byte included) states
    (ITU-T H.264 7.3.2.1.1, frame cropping 7.4.2.1.1); None when it is not an SPS or is
    malformed (truncated, an exp-Golomb code beyond 32 bits, a value out of its range, a
    crop larger than the picture)."""
    if len(nal) < 4 or nal[0] & 0x1F != H264_NAL_SPS or nal[0] & 0x80:
        return None
    try:
        return _parse_sps(_BitReader(_rbsp(nal[1 : _MAX_SPS_BYTES + 1])))
    except ValueError:
        return None


def _parse_sps(reader: _BitReader) -> H264Size | None:
    profile_idc = reader.bits(8)
    reader.bits(16)  # constraint flags, reserved bits, level_idc
    if reader.ue() > 31:  # seq_parameter_set_id
        return None
    chroma_format_idc = 1
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc > 3:
            return None
        if chroma_format_idc == 3:
            separate_colour_plane = reader.flag()
        if reader.ue() > 6 or reader.ue() > 6:  # bit_depth_luma/chroma_minus8
            return None
        reader.flag()  # qpprime_y_zero_transform_bypass_flag
        if reader.flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.flag():
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    if reader.ue() > 12:  # log2_max_frame_num_minus4
        return None
    pic_order_cnt_type = reader.ue()
    if pic_order_cnt_type == 0:
        if reader.ue() > 12:  # log2_max_pic_order_cnt_lsb_minus4
            return None
    elif pic_order_cnt_type == 1:
        reader.flag()  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = reader.ue()
        if cycle > 255:
            return None
        for _ in range(cycle):
            reader.se()
    elif pic_order_cnt_type != 2:
        return None
    reader.ue()  # max_num_ref_frames
    reader.flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.flag()
    if not frame_mbs_only:
        reader.flag()  # mb_adaptive_frame_field_flag
    reader.flag()  # direct_8x8_inference_flag
    coded_width = width_mbs * 16
    coded_height = (2 - frame_mbs_only) * height_map_units * 16
    crop_x = crop_y = 0
    if reader.flag():  # frame_cropping_flag
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_width = 1 if chroma_format_idc == 3 else 2
            sub_height = 2 if chroma_format_idc == 1 else 1
            unit_x, unit_y = sub_width, sub_height * (2 - frame_mbs_only)
        crop_x, crop_y = unit_x * (left + right), unit_y * (top + bottom)
        if crop_x >= coded_width or crop_y >= coded_height:
            return None
    return H264Size(coded_width - crop_x, coded_height - crop_y, coded_width, coded_height)


def h264_access_unit_sizes(data: bytes) -> list[H264Size | None]:
    """The size stated by each SPS in an Annex B access unit (None for a malformed one);
    [] when it carries no SPS (most frames)."""
    return [h264_sps_size(unit) for unit in h264_nal_units(data) if unit[0] & 0x1F == H264_NAL_SPS]
