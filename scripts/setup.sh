#!/usr/bin/env bash
# Sets up everything KOMI RTC needs on Debian/Ubuntu with Python 3.10-3.12: system packages,
# a virtual environment in .venv and the package with its extras. Safe to run again.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   also test tools, Chromium and a Korean font for the browser tests
#   scripts/setup.sh --heavy  also BlazePose heavy (28 MB, for --pose-model heavy)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_heavy=0
for option in "$@"; do
  case "$option" in
    --test) want_test=1 ;;
    --heavy) want_heavy=1 ;;
    *) echo "setup: unknown option $option (known: --test, --heavy)" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "setup: need root (or sudo) to install: ${*: -1}" >&2; return 1; fi; }

PYTHON=${PYTHON:-python3}
missing=()
$PYTHON -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
# opencv (pulled by mediapipe) needs libGL and glib at import time
ldconfig -p 2>/dev/null | grep -q "libGL.so.1" || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q "libglib-2.0.so.0" || missing+=(libglib2.0-0)
# a Korean font, so the pages (and the browser tests' screenshots) show Korean, not boxes
has_korean_font() {
  [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] ||
    { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=ko family 2>/dev/null)" ]; }
}
if [ $want_test = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
# the other browsers the pages are tested in (issue 25): Firefox (driven by puppeteer-core,
# tests/js), WebKitGTK's WebDriver and the X server it needs (iptables, installed for the
# TURN test below, keeps the browsers' mDNS multicast on this machine during the tests)
if [ $want_test = 1 ]; then
  [ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
  [ -x /usr/bin/WebKitWebDriver ] || missing+=(webkit2gtk-driver)
  [ -x /usr/bin/Xvfb ] || missing+=(xvfb)
fi
if [ $want_test = 1 ] && ! has_korean_font; then missing+=(fonts-noto-cjk); fi
# the history tests run a real PostgreSQL (tests/databases.py starts and stops it)
if [ $want_test = 1 ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
# the cluster tests run a real Redis (tests/databases.py starts and stops it)
if [ $want_test = 1 ] && ! command -v redis-server >/dev/null && [ ! -x /usr/bin/redis-server ]; then
  missing+=(redis-server)
fi
# the TURN test (tests/test_turn.py): coturn on the host, a camera in a network namespace
# behind a NAT router (iproute2's `ip netns`, iptables MASQUERADE in the router's namespace)
if [ $want_test = 1 ]; then
  command -v turnserver >/dev/null || [ -x /usr/bin/turnserver ] || missing+=(coturn)
  command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
  command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || missing+=(iptables)
fi
# the WHIP/WHEP tests (tests/test_whip_clients.py): GStreamer's webrtcbin with x264enc and its
# Python bindings (run by Debian's python3, not the venv), and node/npm for the npm clients
if [ $want_test = 1 ]; then
  have_gst_element() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0')
from gi.repository import Gst; Gst.init(None); raise SystemExit(Gst.ElementFactory.find('$1') is None)" \
      2>/dev/null
  }
  have_gst_element webrtcbin && have_gst_element nicesrc && have_gst_element y4mdec ||
    missing+=(python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-nice)
  have_gst_element x264enc || missing+=(gstreamer1.0-plugins-ugly)
  # webrtcbin's Python types (tests/gst_whip_camera.py imports GstWebRTC and GstSdp): the
  # elements above come without them
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import gi; gi.require_version('GstWebRTC', '1.0')
gi.require_version('GstSdp', '1.0')" 2>/dev/null || missing+=(gir1.2-gst-plugins-bad-1.0)
  # Firefox's real Linux camera path (tests/linux_camera.py): a D-Bus session, PipeWire with
  # WirePlumber, the camera portal (its GTK backend needs the Xvfb display) and a GStreamer
  # pipewiresink camera
  have_gst_element pipewiresink || missing+=(gstreamer1.0-pipewire)
  command -v pipewire >/dev/null || missing+=(pipewire pipewire-bin)
  command -v wireplumber >/dev/null || missing+=(wireplumber)
  command -v dbus-daemon >/dev/null || missing+=(dbus-daemon)
  command -v gdbus >/dev/null || missing+=(libglib2.0-bin)
  [ -x /usr/libexec/xdg-desktop-portal ] || missing+=(xdg-desktop-portal)
  [ -x /usr/libexec/xdg-desktop-portal-gtk ] || missing+=(xdg-desktop-portal-gtk)
  command -v npm >/dev/null || missing+=(npm)
fi
# --heavy fetches BlazePose heavy with npm (below)
if [ $want_heavy = 1 ] && ! command -v npm >/dev/null; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  as_root apt-get update -qq </dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  $PYTHON -m venv .venv
fi
extras="."
[ $want_test = 1 ] && extras=".[dev]"
stamp=".venv/.komi-installed-$want_test"
# the test install is a superset of the runtime one: after it, the demo installs nothing
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
if ! fresh "$stamp" && ! { [ $want_test = 0 ] && fresh .venv/.komi-installed-1; }; then
  echo "setup: installing Python packages (first time takes a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  # setuptools warns about every editable install at length; its errors still show
  .venv/bin/python -m pip install -q -e "$extras" 2> >(grep -v -e "BuildBackendWarning" \
    -e "^ *!!$" -e "^ *\*\*\*" -e "Please be careful with folders" -e "name as your package" \
    -e "with strategy, WheelFile" -e "^ *$" >&2)
  touch "$stamp"
fi

# the WHIP/WHEP clients nobody here wrote, at the versions tests/js/package-lock.json pins
if [ $want_test = 1 ] && { [ ! -d tests/js/node_modules ] ||
  [ tests/js/package-lock.json -nt tests/js/node_modules ]; }; then
  echo "setup: installing the npm test clients (tests/js)"
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error </dev/null
  touch tests/js/node_modules
fi
# aiortc's own example page (examples/server, BSD-3-Clause), unmodified, for the H264 test
# (tests/test_whip_clients.py): taken from aiortc's source package on PyPI at the installed
# version, into a cache outside the repository (nothing of it is committed)
example=".cache/aiortc-example"
if [ $want_test = 1 ] && [ ! -f "$example/client.js" ]; then
  version=$(.venv/bin/python -c "import aiortc; print(aiortc.__version__)")
  echo "setup: fetching aiortc $version's example page (PyPI source package)"
  rm -rf .cache/aiortc-sdist && mkdir -p .cache/aiortc-sdist "$example"
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d .cache/aiortc-sdist \
    "aiortc==$version" 2> >(grep -v "^WARNING: Location" >&2)
  tar -xzf .cache/aiortc-sdist/aiortc-"$version".tar.gz -C "$example" --strip-components=3 \
    "aiortc-$version/examples/server/index.html" "aiortc-$version/examples/server/client.js"
  tar -xzf .cache/aiortc-sdist/aiortc-"$version".tar.gz -C "$example" --strip-components=1 \
    "aiortc-$version/LICENSE"
  rm -rf .cache/aiortc-sdist
fi
# real footage nobody here made (BSD-3-Clause): Pose2Sim's 4-camera lab demo and Sports2D's
# two-person demo, as the PyPI wheels, into a cache outside the repository (nothing of them
# is committed); komi_rtc/bench/real_footage.py unpacks what the tests and benchmarks use
footage="${KOMI_FOOTAGE_DIR:-$HOME/.cache/komi_rtc/footage}"
if [ $want_test = 1 ] && { [ ! -f "$footage/pose2sim-0.10.49-py3-none-any.whl" ] ||
  [ ! -f "$footage/sports2d-0.8.34-py3-none-any.whl" ]; }; then
  echo "setup: fetching the real footage (Pose2Sim and Sports2D demo wheels, 60 MB)"
  mkdir -p "$footage"
  .venv/bin/python -m pip download -q --no-deps -d "$footage" pose2sim==0.10.49 sports2d==0.8.34 \
    2> >(grep -v "^WARNING: Location" >&2)
fi
# BlazePose heavy (Apache-2.0), only on request: the landmark model from the npm package
# @mediapipe/pose, checked against the sha256 komi_rtc/pose/model_choice.py expects, into the
# model cache (komi_rtc builds its .task bundle from it at first use)
if [ $want_heavy = 1 ]; then
  models="${KOMI_MODEL_DIR:-$HOME/.cache/komi_rtc/models}"
  heavy_sha256=59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe
  if ! echo "$heavy_sha256  $models/pose_landmark_heavy.tflite" | sha256sum -c --status 2>/dev/null; then
    command -v npm >/dev/null || { echo "setup: --heavy needs npm (apt-get install npm)" >&2; exit 1; }
    echo "setup: fetching BlazePose heavy (npm @mediapipe/pose 0.5.1675469404, 41 MB package)"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    (cd "$scratch" && npm pack --silent @mediapipe/pose@0.5.1675469404 </dev/null >/dev/null)
    tar -xzf "$scratch"/mediapipe-pose-0.5.1675469404.tgz -C "$scratch" package/pose_landmark_heavy.tflite
    if ! echo "$heavy_sha256  $scratch/package/pose_landmark_heavy.tflite" | sha256sum -c --status; then
      echo "setup: the heavy model's sha256 does not match; not installed" >&2
      exit 1
    fi
    mkdir -p "$models"
    mv "$scratch/package/pose_landmark_heavy.tflite" "$models/pose_landmark_heavy.tflite"
    echo "setup: BlazePose heavy installed in $models (--pose-model heavy)"
  fi
fi
