#!/usr/bin/env bash
# Sets up and runs every check: lint, types, and the whole test suite (browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check komi_rtc tests
.venv/bin/ruff format --check komi_rtc tests
.venv/bin/mypy komi_rtc
.venv/bin/lint-imports --no-cache
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ $status = 5 ]; then echo "test: pytest collected no tests: failing" >&2; exit 1; fi
exit $status
