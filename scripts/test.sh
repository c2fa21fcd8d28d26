#!/usr/bin/env bash
# Sets up and runs every check: lint, types, and the whole test suite (browser tests included),
# in two processes (pytest-xdist; `-n 0` after it runs one test at a time).
#   scripts/test.sh [pytest options]           everything
#   scripts/test.sh --quick [pytest options]   the same checks, and the tests that need no
#                                              browser, PostgreSQL/Redis, wheel build or
#                                              benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
# the markers are declared in pyproject.toml ([tool.pytest.ini_options]); --dist loadfile
# keeps a module's tests (and its module-scoped servers) in one process
selection=(-n 2 --dist loadfile)
if [ "${1:-}" = "--quick" ]; then
  shift
  selection+=(-m "not browser and not databases and not wheel and not bench")
fi
scripts/setup.sh --test
.venv/bin/ruff check komi_rtc tests
.venv/bin/ruff format --check komi_rtc tests
.venv/bin/mypy komi_rtc
.venv/bin/lint-imports --no-cache
set +e
.venv/bin/python -m pytest "${selection[@]}" "$@"
status=$?
set -e
if [ $status = 5 ]; then echo "test: pytest collected no tests: failing" >&2; exit 1; fi
exit $status
