"""`make bench`: the stack's raw limits and the platform's own figures, measured in one run.

Starts its own broker, database, nginx and services on free loopback ports under a temporary
directory, measures, prints a table and writes it as JSON (bench/results.json unless --out), and
stops everything it started, also on Ctrl-C. Nothing here asserts on time: it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos import measure_chaos
from bench.flow import PlatformBench
from bench.measure import QUICK, Sizes, interference_note, log, measure_bare, measure_raw
from bench.reads import QUICK_READS, ReadSizes, measure_reads
from bench.report import Report, machine_info, render_table, write_json
from bench.stack import Processes, start_servers

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


async def run(sizes: Sizes, processes: Processes, workdir: Path, report: Report) -> None:
    """Every measurement, in order; SIGTERM cancels it like Ctrl-C does."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    log(f"work directory {workdir}")
    servers = start_servers(workdir, processes)
    await measure_raw(servers, processes, sizes, report)
    await measure_bare(servers, processes, sizes, report)
    await PlatformBench(servers, processes, sizes, report).run()
    await measure_chaos(report, count=sizes.chaos_feedback)
    quick = sizes.bulk_documents == QUICK.bulk_documents
    await measure_reads(report, QUICK_READS if quick else ReadSizes(), workdir)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run every measurement, print the table and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under a minute")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs) afterwards")
    parser.add_argument("--concurrency", type=int, default=None, help="connections of the single-POST loads")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds of each HTTP load")
    args = parser.parse_args(argv)
    overrides = {"concurrency": args.concurrency, "http_seconds": args.seconds}
    base = QUICK if args.quick else Sizes()
    sizes = Sizes(**{**asdict(base), **{k: v for k, v in overrides.items() if v is not None}})

    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    workdir = Path(tempfile.mkdtemp(prefix="qualityloop-bench-"))
    processes = Processes()
    report = Report()
    started, started_at = time.perf_counter(), datetime.now(UTC)
    failure: BaseException | None = None
    interrupted = False
    try:
        asyncio.run(run(sizes, processes, workdir, report))
    except (KeyboardInterrupt, asyncio.CancelledError) as error:
        failure, interrupted = error, True
        log("interrupted: stopping everything")
    except Exception as error:
        failure = error
        log(f"failed: {type(error).__name__}: {error}")
    finally:
        processes.stop_all()
    elapsed = time.perf_counter() - started
    interference_note(report)
    if failure is not None:
        report.note(f"run incomplete: {type(failure).__name__}: {failure}")
    print(render_table(report))
    write_json(
        args.out,
        report,
        {
            "started_at": started_at.isoformat(),
            "seconds": elapsed,
            "mode": "quick" if args.quick else "full",
            "complete": failure is None,
            "machine": {**machine_info(), "load_average_at_start": load_at_start},
            "sizes": asdict(sizes),
        },
    )
    log(f"took {elapsed:.0f} s; wrote {args.out}")
    if args.keep or (failure is not None and not interrupted):
        log(f"kept the work directory with the logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
