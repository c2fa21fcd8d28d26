#!/usr/bin/env bash
# Sets up and starts the server with a demo camera: open http://localhost:8000/monitor
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m komi_rtc.server --demo "$@"
