"""A Linux desktop's camera path, as Firefox uses it, with a person as the camera: an X
display (Xvfb), a D-Bus session, PipeWire with WirePlumber, the camera portal
(xdg-desktop-portal, the camera permission preset in its permission store as a person's
"Allow" leaves it) and a GStreamer `pipewiresink` node playing a video of a person.

Everything runs in its own process group under a private runtime directory and is stopped
at the end; the portal and the permission store are started by D-Bus activation inside that
session and end with it."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness import wait_for_blocking, xvfb

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with GStreamer's bindings
PIPEWIRE_CAMERA = Path(__file__).parent / "pipewire_camera.py"
CAMERA_NODE = "komi-test-camera"
PERMISSION_STORE = (
    "--dest",
    "org.freedesktop.impl.portal.PermissionStore",
    "--object-path",
    "/org/freedesktop/impl/portal/PermissionStore",
)


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`args` in its own process group, logging to `log`; the group is ended after."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _gdbus(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["gdbus", "call", "--session", *args], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"gdbus {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout.strip()


@contextmanager
def linux_camera_session(video: Path, workdir: Path) -> Iterator[dict[str, str]]:
    """The session, with the camera playing `video` (Y4M) and the portal listing it: the
    environment a browser needs to find it (DISPLAY, XDG_RUNTIME_DIR, the bus). Logs of
    each part are in `workdir`."""
    runtime = workdir / "runtime"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    with ExitStack() as stack:
        display = stack.enter_context(xvfb())
        env = {
            **os.environ,
            "DISPLAY": display,
            "XDG_RUNTIME_DIR": str(runtime),
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime / 'bus'}",
        }
        # the bus's environment is what it activates the portal with (it needs DISPLAY for
        # its GTK backend, without which its camera portal crashes)
        stack.enter_context(
            _process(
                ["dbus-daemon", "--session", f"--address={env['DBUS_SESSION_BUS_ADDRESS']}",
                 "--nofork", "--nopidfile"],
                env, workdir / "dbus.log",
            )
        )  # fmt: skip
        wait_for_blocking(lambda: (runtime / "bus").exists(), 10, "the D-Bus session")
        stack.enter_context(_process(["pipewire"], env, workdir / "pipewire.log"))
        wait_for_blocking(lambda: (runtime / "pipewire-0").exists(), 10, "PipeWire")
        stack.enter_context(_process(["wireplumber"], env, workdir / "wireplumber.log"))
        camera_log = workdir / "camera.log"
        camera = stack.enter_context(
            _process(
                [SYSTEM_PYTHON, str(PIPEWIRE_CAMERA), str(video), CAMERA_NODE], env, camera_log
            )
        )
        wait_for_blocking(
            lambda: "playing" in camera_log.read_text() or camera.poll() is not None,
            20,
            "the PipeWire camera",
        )
        assert camera.poll() is None, camera_log.read_text()
        # a person allowed the camera once: the portal's permission store remembers it (the
        # app id of a browser that is not sandboxed is "")
        _gdbus(
            env, *PERMISSION_STORE, "--method",
            "org.freedesktop.impl.portal.PermissionStore.SetPermission",
            "devices", "true", "camera", "", "['yes']",
        )  # fmt: skip

        def portal_sees_camera() -> bool:
            answer = _gdbus(
                env, "--dest", "org.freedesktop.portal.Desktop",
                "--object-path", "/org/freedesktop/portal/desktop",
                "--method", "org.freedesktop.DBus.Properties.Get",
                "org.freedesktop.portal.Camera", "IsCameraPresent",
            )  # fmt: skip
            return "true" in answer

        wait_for_blocking(portal_sees_camera, 20, "the camera portal listing the camera", 0.5)
        yield {key: env[key] for key in ("DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")}
