"""A WHIP camera made of GStreamer's own parts: x264enc (High profile, as OBS and most
hardware encoders send) and webrtcbin, with the WHIP exchange done over HTTP by this script.

Runs under the system Python, which has GStreamer's bindings (Debian's python3-gst-1.0),
not the project's virtual environment; imports nothing of KOMI's:

    /usr/bin/python3 tests/gst_whip_camera.py URL TOKEN VIDEO.y4m SECONDS

It POSTs its offer (all ICE candidates gathered) to URL, streams the Y4M file in a loop for
SECONDS, then DELETEs the session. It prints one JSON object a line to stdout: `answered`
(status, location, the answer's codec), `connection` states, `deleted`, or `error`.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = (
    "multifilesrc location={video} loop=true ! y4mdec ! videoconvert ! "
    "video/x-raw,format=I420 ! clocksync ! "
    "x264enc tune=zerolatency speed-preset=veryfast bitrate=1500 key-int-max=30 ! "
    "video/x-h264,profile=high ! h264parse config-interval=-1 ! "
    "rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=102 ! "
    "webrtcbin name=webrtc bundle-policy=max-bundle"
)


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class WhipCamera:
    def __init__(self, url: str, token: str, video: str, seconds: float) -> None:
        self.url = url
        self.token = token
        self.seconds = seconds
        self.location: str | None = None
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.parse_launch(PIPELINE.format(video=video))
        self.webrtc = self.pipeline.get_by_name("webrtc")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_connection)
        self.offered = False

    def run(self) -> int:
        self.pipeline.set_state(Gst.State.PLAYING)
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        GLib.timeout_add(int(self.seconds * 1000), self.finish)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        return 0

    def on_negotiation_needed(self, element: Gst.Element) -> None:
        promise = Gst.Promise.new_with_change_func(self.on_offer, element, None)
        element.emit("create-offer", None, promise)

    def on_offer(self, promise: Gst.Promise, element: Gst.Element, _: object) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            say(
                event="error",
                status=0,
                body=f"create-offer failed: {reply.to_string() if reply else None}",
            )
            self.loop.quit()
            return
        element.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.offered:
            self.offered = True  # WHIP without trickle: every candidate is in the offer
            GLib.idle_add(self.post_offer)

    def on_connection(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("connection-state")
        say(event="connection", state=state.value_nick)

    def post_offer(self) -> bool:
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        request = urllib.request.Request(
            self.url,
            data=sdp.encode(),
            method="POST",
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, answer = response.status, response.read().decode()
                self.location = response.headers.get("Location")
        except urllib.error.HTTPError as exc:
            say(event="error", status=exc.code, body=exc.read().decode(errors="replace"))
            self.loop.quit()
            return False
        codec = next((line for line in answer.splitlines() if "rtpmap" in line), "")
        say(event="answered", status=status, location=self.location, codec=codec)
        ok, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(
            GstWebRTC.WebRTCSDPType.ANSWER, message
        )
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        return False

    def finish(self) -> bool:
        if self.location is not None:
            url = urllib.parse.urljoin(self.url, self.location)
            request = urllib.request.Request(
                url, method="DELETE", headers={"Authorization": f"Bearer {self.token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    say(event="deleted", status=response.status)
            except urllib.error.HTTPError as exc:
                say(event="deleted", status=exc.code)
        self.loop.quit()
        return False


def main() -> int:
    url, token, video, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    Gst.init(None)
    return WhipCamera(url, token, video, seconds).run()


if __name__ == "__main__":
    sys.exit(main())
