"""Release a video frame as soon as its last packet arrives, not one frame later.

aiortc's JitterBuffer hands a frame on only when the first packet of the *next* frame
arrives, which adds a whole frame interval (67 ms at 15 fps) to every result. A frame whose
packets are all present from the buffer's origin up to the packet with the RTP marker bit
(the last packet of a video frame) is complete: this subclass releases it then. Anything
else (loss, reordering) falls back to aiortc's own logic, so behaviour under loss is
unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

logger = logging.getLogger(__name__)

_RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


class MarkerReleaseJitterBuffer(JitterBuffer):
    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._origin is None:
            return None
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                break
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                break
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(
                    data=b"".join(p._data for p in packets),  # type: ignore[attr-defined]
                    timestamp=timestamp,
                )
        return super()._remove_frame(sequence_number)


def install_marker_release(receiver: Any) -> bool:
    """Swap a video receiver's jitter buffer before packets arrive; False if aiortc changed."""
    current = getattr(receiver, _RECEIVER_JITTER_BUFFER, None)
    if type(current) is not JitterBuffer or not getattr(current, "_is_video", False):
        logger.warning("aiortc's receiver changed: keeping its stock jitter buffer")
        return False
    setattr(
        receiver,
        _RECEIVER_JITTER_BUFFER,
        MarkerReleaseJitterBuffer(capacity=current.capacity, is_video=True),
    )
    return True
