"""WebKitGTK (Debian's webkit2gtk-driver: WebKitWebDriver and its MiniBrowser) driven by
Selenium with the driver's path given (Selenium's driver manager downloads nothing), under
its own Xvfb. Debian's build has no WebRTC: the pages must say so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


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
