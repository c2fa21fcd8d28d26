"""The ordinary install: the built wheel in a clean venv, run from another directory.

Builds the wheel from a copy of the sources, installs it (dependencies from the package
index, as a user's `pip install` would) into a new virtual environment, then checks what a
user touches: the console scripts, the pages, the catalog, and the demo camera analysed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FILES = ("komi_rtc", "web", "pyproject.toml", "README.md", "LICENSE")

pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A clean venv with the wheel installed; returns its bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in PACKAGE_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), "."],
        cwd=source,
        check=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("komi_rtc-*.whl")
    _check_wheel_contents(wheel)
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    bin_dir = work / "venv" / "bin"
    subprocess.run(
        # --no-compile: byte-compiling every dependency up front took 17 of 56 s here; what
        # runs is compiled when first imported, as usual
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
        check=True,
        timeout=900,
    )
    return bin_dir


def _check_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    pages = ("camera.html", "monitor.html", "index.html", "camera.js", "style.css")
    app = ("camera.webmanifest", "camera-sw.js", "offline.html", "icons/camera-512.png")
    for page in pages + app:
        assert f"komi_rtc/web/{page}" in names, f"the wheel lacks the page {page}"
    assert "komi_rtc/analysis/exercises.json" in names
    assert "komi_rtc/data/person.jpg" in names
    # every subpackage of the source tree is shipped (pyproject.toml lists them by hand)
    for init in (ROOT / "komi_rtc").rglob("__init__.py"):
        relative = init.relative_to(ROOT).as_posix()
        assert relative in names, f"the wheel lacks {relative}: add it to pyproject.toml"


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=5
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_console_scripts_work_from_another_directory(installed, tmp_path):
    listing = subprocess.run(
        [str(installed / "komi-rtc-analysis"), "--list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert "squat" in listing.stdout and "스쿼트" in listing.stdout
    for script in ("komi-rtc", "komi-rtc-camera", "komi-rtc-analysis"):
        done = subprocess.run(
            [str(installed / script), "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and "usage:" in done.stdout, (script, done.stderr)


def test_installed_server_serves_pages_catalog_and_analyses_the_demo(
    installed, server_process, tmp_path
):
    server = server_process(
        *("--workers", "1", "--demo", "--state-dir", str(tmp_path / "state")),
        command=[str(installed / "komi-rtc")],
        admin_token=None,  # the server makes one on first start, as for a person
        cwd=tmp_path,
    )
    base = server.url
    token = (tmp_path / "state" / "admin_token").read_text().strip()

    def demo_analysed() -> bool:
        status, body = _get(f"{base}/stats", token)
        cameras = json.loads(body)["cameras"] if status == 200 else {}
        return cameras.get("demo_camera", {}).get("frames_analysed", 0) >= 5

    server.wait_until(demo_analysed, timeout=120, what="the demo camera analysed")
    assert _get(f"{base}/stats")[0] == 401  # no token
    for page in (
        "/",
        "/camera",
        "/monitor",
        "/history",
        "/static/monitor.js",
        "/static/style.css",
        "/static/vendor/uPlot.iife.min.js",
        "/calibration/board.png",
        "/people/nobody/recommendation",  # the coaching rules ship too
    ):
        status, body = _get(base + page, token)
        assert status == 200 and body, page
    status, body = _get(f"{base}/exercises", token)
    assert status == 200
    assert "squat" in {e["id"] for e in json.loads(body)["exercises"]}
    code = server.stop(timeout=60)
    output = server.log_text()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert f"admin token (new; keep it secret; it mints links with POST /tokens): {token}" in output
    assert f"{base.replace('127.0.0.1', 'localhost')}/monitor?token=" in output
