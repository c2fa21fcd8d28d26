"""`python -m komi_rtc.bench`: the load benchmark (bench/load.py), or with `--nodes` the
cluster scale-out benchmark (bench/cluster.py)."""

import sys

from .cluster import main as cluster_main
from .load import main as load_main


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if any(a == "--nodes" or a.startswith("--nodes=") for a in arguments):
        return cluster_main(arguments)
    return load_main(arguments)


raise SystemExit(main())
