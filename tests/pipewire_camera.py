"""A camera on the PipeWire graph, as a webcam appears to Firefox on Linux: a GStreamer
`pipewiresink` source node (`media.class=Video/Source`, `media.role=Camera`, what the camera
portal lists) playing a Y4M video in a loop until it is stopped.

Runs under the system Python, which has GStreamer's bindings (Debian's python3-gst-1.0 and
gstreamer1.0-pipewire), not the project's virtual environment; imports nothing of KOMI's:

    /usr/bin/python3 tests/pipewire_camera.py VIDEO.y4m NODE_NAME

It prints `playing` once the node is on the graph, and `error: ...` if GStreamer fails.
The frames are read here and pushed through appsrc (y4mdec cannot start a file over).
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def read_y4m(path: str) -> tuple[int, int, int, list[bytes]]:
    """(width, height, fps, I420 frames) of a 4:2:0 Y4M file."""
    with open(path, "rb") as video:
        header = video.readline().split()
        fields = {item[:1]: item[1:] for item in header[1:]}
        width, height = int(fields[b"W"]), int(fields[b"H"])
        numerator, denominator = fields[b"F"].split(b":")
        fps = round(int(numerator) / int(denominator))
        size = width * height * 3 // 2
        frames = []
        while video.readline().startswith(b"FRAME"):
            frames.append(video.read(size))
    return width, height, fps, frames


def main() -> None:
    path, node_name = sys.argv[1], sys.argv[2]
    width, height, fps, frames = read_y4m(path)
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"appsrc name=frames is-live=true format=time do-timestamp=false "
        f"caps=video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! "
        "videoconvert ! video/x-raw,format=I420 ! "
        f"pipewiresink mode=provide client-name={node_name} "
        f'stream-properties="props,media.class=Video/Source,media.role=Camera,'
        f'node.name={node_name},node.description={node_name}"'
    )
    source = pipeline.get_by_name("frames")
    loop = GLib.MainLoop()
    count = 0

    def push() -> bool:
        nonlocal count
        buffer = Gst.Buffer.new_wrapped(frames[count % len(frames)])
        buffer.pts = buffer.dts = count * Gst.SECOND // fps
        buffer.duration = Gst.SECOND // fps
        source.emit("push-buffer", buffer)
        count += 1
        return True

    def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            error, _ = message.parse_error()
            print(f"error: {error.message}", flush=True)
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    GLib.timeout_add(1000 // fps, push)  # pacing the camera at its frame rate
    print("playing", flush=True)
    loop.run()
    pipeline.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
