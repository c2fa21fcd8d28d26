"""Where a camera's results go: its `komi` data channel, a monitor's, or a legacy WebSocket."""

from __future__ import annotations

from typing import Any, Protocol

_MAX_BUFFERED_BYTES = 256 * 1024  # a peer this far behind misses messages, never delays others


class MessageSink(Protocol):
    """Where results go: a `komi` data channel or a legacy WebSocket."""

    def send_text(self, text: str) -> bool:
        """Send without waiting; False when the peer is gone or too far behind."""
        ...


class DataChannelSink:
    """A peer's `komi` data channel; a peer too far behind misses messages."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def send_text(self, text: str) -> bool:
        channel = self._channel
        if channel.readyState != "open" or channel.bufferedAmount > _MAX_BUFFERED_BYTES:
            return False
        channel.send(text)
        return True
