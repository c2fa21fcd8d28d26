"""WHIP and WHEP requests (RFC 9725, RFC 8840): an SDP offer as the body itself, the codecs
it lists, and trickle-ICE fragments, validated into typed values like every other request
(`requests.py`, whose SDP limits they share)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidRequest, UnsupportedMediaType
from .requests import (
    MAX_CANDIDATES,
    MAX_SDP_CHARS,
    MAX_SDP_LINES,
    Offer,
    check_sdp,
    excerpt,
    validate_camera_id,
    validate_person_id,
    validate_station_id,
)

SDP_CONTENT_TYPE = "application/sdp"
TRICKLE_CONTENT_TYPE = "application/trickle-ice-sdpfrag"
_WHIP_QUERY = ("person", "station", "token")


def _sdp_text(body: bytes, content_type: str, expected: str, what: str) -> str:
    if content_type.split(";", 1)[0].strip().lower() != expected:
        raise UnsupportedMediaType(
            f"{what} must be sent as Content-Type: {expected}, not {excerpt(content_type)!r}"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not UTF-8 text") from None


def parse_sdp_offer(
    body: bytes,
    content_type: str,
    role: str,
    camera_id: str,
    query: Mapping[str, str],
) -> Offer:
    """A WHIP (role camera) or WHEP (role monitor) request: the offer is the body itself
    (`application/sdp`), the camera id is the URL's, a camera's `person` and `station` come
    as query parameters. Checked against the same SDP limits as `POST /offer`; raises
    InvalidRequest, or UnsupportedMediaType (415) for another Content-Type."""
    sdp = _sdp_text(body, content_type, SDP_CONTENT_TYPE, "the offer")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidRequest("the body is not an SDP offer (it must start with 'v=0')")
    check_sdp(sdp)
    camera_id = validate_camera_id(camera_id)
    unknown = sorted(set(query) - set(_WHIP_QUERY))
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter {excerpt(unknown[0])!r}: only 'person' and 'station'"
        )
    person = query.get("person")
    station = query.get("station")
    if role != "camera" and (person is not None or station is not None):
        raise InvalidRequest("only a camera names a 'person' or a 'station'")
    return Offer(
        sdp=sdp,
        role=role,
        camera_id=camera_id,
        person=None if person is None else validate_person_id(person),
        station=None if station is None else validate_station_id(station),
    )


@dataclass(frozen=True)
class SdpCodec:
    """A codec as an offer's media section lists it (`a=rtpmap`, `a=fmtp`)."""

    mime_type: str  # "video/H264"
    parameters: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        name = self.mime_type.partition("/")[2]
        if name.upper() != "H264":
            return name
        mode = self.parameters.get("packetization-mode", "0")
        profile = self.parameters.get("profile-level-id", "42e01f")
        return f"{name} (profile-level-id={profile}, packetization-mode={mode})"


def offered_codecs(sdp: str, kind: str = "video") -> list[SdpCodec]:
    """The codecs of the offer's first `m=<kind>` section, in its order of preference
    (RTX, RED and FEC left out: they carry no picture of their own)."""
    names: dict[str, str] = {}
    parameters: dict[str, dict[str, str]] = {}
    order: list[str] = []
    section = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            if section == kind:
                break
            fields = line[2:].split()
            section = fields[0] if fields else ""
            if section == kind:
                order = fields[3:]
        elif section == kind and line.startswith("a=rtpmap:"):
            payload_type, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[payload_type] = rest.split("/", 1)[0]
        elif section == kind and line.startswith("a=fmtp:"):
            payload_type, _, rest = line[len("a=fmtp:") :].partition(" ")
            pairs = (item.partition("=") for item in rest.split(";"))
            parameters[payload_type] = {k.strip().lower(): v.strip() for k, _, v in pairs}
    codecs = []
    for payload_type in order:
        name = names.get(payload_type)
        if name is None or name.lower() in ("rtx", "red", "ulpfec", "flexfec-03"):
            continue
        codecs.append(SdpCodec(f"{kind}/{name}", parameters.get(payload_type, {})))
    return codecs


def ice_credentials(sdp: str) -> tuple[str | None, str | None]:
    """The first `a=ice-ufrag` and `a=ice-pwd` of an SDP or SDP fragment."""
    ufrag = password = None
    for line in sdp.splitlines():
        if ufrag is None and line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :].strip()
        elif password is None and line.startswith("a=ice-pwd:"):
            password = line[len("a=ice-pwd:") :].strip()
    return ufrag, password


@dataclass(frozen=True)
class TrickleFragment:
    """A WHIP `PATCH` body (`application/trickle-ice-sdpfrag`, RFC 8840): candidates, each
    with the `a=mid` of its section, and whether the client's candidates are all sent."""

    ice_ufrag: str | None
    ice_pwd: str | None
    candidates: tuple[tuple[str | None, str], ...]  # (mid, "candidate:...")
    end_of_candidates: bool


def parse_trickle_fragment(body: bytes, content_type: str) -> TrickleFragment:
    """Validate a trickle-ICE fragment; raises InvalidRequest (400) for a malformed one or
    one beyond the offer limits (MAX_SDP_CHARS, MAX_SDP_LINES, MAX_CANDIDATES), and
    UnsupportedMediaType (415) for another Content-Type."""
    text = _sdp_text(body, content_type, TRICKLE_CONTENT_TYPE, "a trickle-ICE PATCH")
    if len(text) > MAX_SDP_CHARS:
        raise InvalidRequest(f"the fragment has more than {MAX_SDP_CHARS} characters")
    lines = text.splitlines()
    if len(lines) > MAX_SDP_LINES:
        raise InvalidRequest(f"the fragment has more than {MAX_SDP_LINES} lines")
    ufrag, password = ice_credentials(text)
    mid: str | None = None
    seen: set[str] = set()
    candidates: list[tuple[str | None, str]] = []
    end = False
    for line in lines:
        if line.startswith("m="):
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
        elif line.startswith("a=candidate:"):
            fields = line[2:].split()
            _check_candidate(fields)
            if fields[1] == "0":  # @eyevinn/whip-web-client 1.1 writes RTP's component as 0
                fields[1] = "1"
            candidate = " ".join(fields)
            if candidate not in seen:  # a client repeats it under every mid of the bundle
                seen.add(candidate)
                candidates.append((mid, candidate))
        elif line.strip() == "a=end-of-candidates":
            end = True
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidRequest(
            f"{len(candidates)} ICE candidates, more than the {MAX_CANDIDATES} accepted"
        )
    return TrickleFragment(ufrag, password, tuple(candidates), end)


def _check_candidate(fields: list[str]) -> None:
    """`candidate:foundation component transport priority address port typ type ...`."""
    if len(fields) < 8 or fields[6] != "typ":
        raise InvalidRequest(
            "a=candidate is not 'foundation component transport priority address port typ type'"
        )
    try:
        component, priority, port = int(fields[1]), int(fields[3]), int(fields[5])
    except ValueError:
        raise InvalidRequest("a=candidate: component, priority and port must be numbers") from None
    if not (0 <= component <= 256 and 0 <= priority < 2**32 and 0 <= port <= 65535):
        raise InvalidRequest("a=candidate: component, priority or port out of range")
