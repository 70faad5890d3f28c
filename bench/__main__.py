"""``python -m bench [name ...]``: run the benchmarks and print their reports.

Exits with status 1 when a benchmark could not run or missed a goal.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from . import Report, benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    modules = benchmarks(args.names or None)
    if args.list:
        for module in modules:
            print(f"{module.__name__.rsplit('.', 1)[1]}: {getattr(module, 'TITLE', '')}")
        return 0
    if not modules:
        print(f"no benchmark named {' '.join(args.names)}", file=sys.stderr)
        return 1
    reports = []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[1]
        print(f"running {name} ...", flush=True)
        started = time.monotonic()
        try:
            report = module.run()
        except Exception:  # a benchmark that crashes must not hide the others
            report = Report(getattr(module, "TITLE", name), error=traceback.format_exc())
        report.notes.append(f"ran in {time.monotonic() - started:.0f} s")
        reports.append(report)
        print(report.render(), end="\n\n", flush=True)
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
