"""The monitor's skeletons where the browser gives less than Chromium and Firefox do:
without requestVideoFrameCallback, or with frames that carry no RTP timestamp (older Safari
and Firefox). Chromium with those taken away before the page runs; a person streamed by a
Python camera."""

from __future__ import annotations

from typing import Any

import pytest
from browser import BROWSER_TESTS, own_skeletons, page_link, skeleton_pixels, tile_is_live
from contract_client import PersonTrack, connect_camera

pytestmark = BROWSER_TESTS

NO_RVFC = "delete HTMLVideoElement.prototype.requestVideoFrameCallback;"
NO_RTP_TIMESTAMP = """
const requestFrame = HTMLVideoElement.prototype.requestVideoFrameCallback;
HTMLVideoElement.prototype.requestVideoFrameCallback = function (callback) {
  return requestFrame.call(this, (now, metadata) => {
    const stripped = { ...metadata };
    delete stripped.rtpTimestamp;
    callback(now, stripped);
  });
};"""
NO_SOURCES = "delete RTCRtpReceiver.prototype.getSynchronizationSources;"


@pytest.mark.parametrize(
    "taken, frame_keys, frame_accurate",
    [
        (NO_RTP_TIMESTAMP, "source", True),
        (NO_RTP_TIMESTAMP + NO_SOURCES, "newest", False),
        (NO_RVFC, "newest", False),
    ],
    ids=["no_rtp_timestamp", "no_rtp_timestamp_nor_sources", "no_rvfc"],
)
async def test_monitor_draws_skeletons_without_frame_timestamps(
    server: Any, browser: Any, taken: str, frame_keys: str, frame_accurate: bool
) -> None:
    camera = await connect_camera(server.url, PersonTrack(), camera_id="fallback_cam")
    context = None
    try:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(taken)
        monitor = await context.new_page()
        await monitor.goto(page_link(server.url, "/monitor"))
        await tile_is_live(monitor, "fallback_cam")  # plays, skeletons drawn
        await monitor.wait_for_function(
            "window.komiMonitor.tiles.fallback_cam.drawn >= 20", timeout=30000
        )
        stats = await monitor.evaluate("window.komiMonitor.tiles.fallback_cam")
        assert stats["frameKeys"] == frame_keys, stats
        assert stats["rvfc"] == (taken != NO_RVFC)
        if frame_accurate:  # the receiver's newest frame: near the one on screen, not exact
            await own_skeletons(monitor, "fallback_cam")
        assert skeleton_pixels(await monitor.screenshot()) > 500
    finally:
        if context is not None:
            await context.close()
        await camera.close()
