"""CPU seconds of ``load_settings`` on a large generated INI file (start-up of ``ocsd run``).

    python bench/bench_settings.py [--groups 20000] [--repeat 5] [--profile]

The file is the one bench/scale.py writes (its ``write_config``: N groups, each with
its own calling list). Prints the best and median CPU seconds (``time.process_time``)
of the whole ``load_settings(path)``, and of its two phases (``parse_ini``, then
``Settings(**values)``), with the garbage collector enabled (as in the daemon) and disabled.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import write_config

from ocsd.config.ini import parse_ini
from ocsd.config.settings import Settings, load_settings


def write(path: Path, groups: int) -> None:
    """The INI bench/scale.py runs ``ocsd run`` with, for ``groups`` groups."""
    write_config(path, groups, 10, "http://127.0.0.1:9/state", 8090, 32, 10.0)


def cpu(action: Callable[[], object], repeat: int, collect: bool) -> list[float]:
    """CPU seconds of each of ``repeat`` calls, gc enabled or not; a full collection first."""
    times = []
    for _ in range(repeat):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            start = time.process_time()
            action()
            times.append(time.process_time() - start)
        finally:
            gc.enable()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one load, gc on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ocsd.ini"
        write(path, args.groups)
        text = path.read_text(encoding="utf-8")
        print(f"{args.groups:,} groups, {len(text) / 1e6:.1f} MB, {text.count(chr(10)):,} lines")
        ini = parse_ini(text, str(path))

        def settings() -> Settings:
            return Settings(**ini.values)

        phases: list[tuple[str, Callable[[], object]]] = [
            ("load_settings(path)", lambda: load_settings(path)),
            ("  parse_ini", lambda: parse_ini(text, str(path))),
            ("  Settings()", settings),
        ]
        print("| phase | gc on: best / median CPU s | gc off: best / median CPU s |")
        print("|---|---:|---:|")
        for label, action in phases:
            on = cpu(action, args.repeat, True)
            off = cpu(action, args.repeat, False)
            print(
                f"| {label} | {min(on):.3f} / {statistics.median(on):.3f} "
                f"| {min(off):.3f} / {statistics.median(off):.3f} |"
            )
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(load_settings, path)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
