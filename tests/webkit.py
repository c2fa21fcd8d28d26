"""WebKitGTK (Debian's webkit2gtk-driver: WebKitWebDriver and its MiniBrowser) driven by
Selenium with the driver's path given (Selenium's driver manager downloads nothing), under
its own Xvfb. Debian's build has no WebRTC: the pages must say so."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
XVFB = "/usr/bin/Xvfb"


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual X display for the run of the block: its name (":N", a free number Xvfb
    chose itself)."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [XVFB, "-displayfd", str(write_end), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as chosen:
            number = chosen.readline().strip()  # written once the display accepts clients
        assert number, f"Xvfb did not start (exit {process.poll()})"
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def webkit(display: str) -> Iterator[Any]:
    """A WebKitGTK session on `display` with WebKit's mock cameras (what a device has)."""
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    options = Options()
    options.binary_location = MINIBROWSER
    options.add_argument("--automation")
    options.add_argument("--enable-mock-capture-devices=true")
    service = Service(executable_path=WEBKIT_DRIVER, env={**os.environ, "DISPLAY": display})
    driver = webdriver.WebKitGTK(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
