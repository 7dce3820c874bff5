"""Seconds the INI reader takes on generated files of every shape, up to 50 MB.

    python bench/ini_parse.py [--sizes 1,4,16,50] [--shapes all] [--give-up 120]

Each shape is written at each size (MB of text) and read with ``read_ini`` (the
reader alone) and ``parse_ini`` (the reader plus the mapping to settings values), once
each, CPU seconds (``time.process_time``). Linear means the MB/s column stays flat as
the size grows. A shape whose read took longer than ``--give-up`` seconds is not tried
at the larger sizes (the quadratic reader took 96 s at 16 MB and did not finish 50 MB
in 10 minutes).

Shapes:

- ``continuation``: one option whose value goes on over every line (indented lines);
- ``many-options``: one section with an option per line, each continued once;
- ``many-sections``: ``[calling-list:<n>]`` sections of two options each;
- ``groups``: the realistic file of bench/scale.py (a group and its calling list);
- ``long-line``: one option whose value is one line of the whole size;
- ``hashes``: one long line full of ``#`` not preceded by a space (no inline comment);
- ``comments``: comment and blank lines between the options.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import write_config

from ocsd.config.ini import parse_ini, read_ini
from ocsd.config.model import ConfigError

MB = 1_000_000


def _repeat_to(size: int, head: str, unit: Callable[[int], str]) -> str:
    """``head`` and then ``unit(i)`` for i = 0, 1, ... until ``size`` characters."""
    parts = [head]
    total = len(head)
    index = 0
    while total < size:
        line = unit(index)
        parts.append(line)
        total += len(line)
        index += 1
    return "".join(parts)


def continuation(size: int) -> str:
    return _repeat_to(size, "[tenant]\nname = first\n", lambda i: f"  continued line {i}\n")


def many_options(size: int) -> str:
    return _repeat_to(size, "[tenant]\n", lambda i: f"option-{i} = value {i}\n  and more\n")


def many_sections(size: int) -> str:
    return _repeat_to(size, "", lambda i: f"[calling-list:L{i}]\ndbid = {i + 1}\nrecords = 10\n")


def long_line(size: int) -> str:
    return "[tenant]\nname = " + "x" * size + "\nccid = 1\n"


def hashes(size: int) -> str:
    return "[tenant]\nname = " + "a#" * (size // 2) + "\nccid = 1\n"


def comments(size: int) -> str:
    return _repeat_to(
        size, "[tenant]\n", lambda i: f"; comment {i}\n# another\n\noption-{i} = {i} # note\n"
    )


def groups(size: int) -> str:
    """bench/scale.py's file, with as many groups as fill ``size`` (about 335 bytes each)."""
    path = Path("/tmp") / f"ocsd-bench-ini-{size}.ini"
    try:
        write_config(path, max(1, size // 335), 10, "http://127.0.0.1:9/state", 8090, 32, 10.0)
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)


SHAPES: dict[str, Callable[[int], str]] = {
    "continuation": continuation,
    "many-options": many_options,
    "many-sections": many_sections,
    "groups": groups,
    "long-line": long_line,
    "hashes": hashes,
    "comments": comments,
}


def cpu(action: Callable[[], object]) -> float:
    """CPU seconds of one call (a refused file counts: the reader did its work)."""
    gc.collect()
    start = time.process_time()
    with contextlib.suppress(ConfigError):
        action()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16,50", help="MB, comma-separated")
    parser.add_argument("--shapes", default="all", help=f"comma-separated: {', '.join(SHAPES)}")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds (see above)")
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes.split(",")]
    shapes = list(SHAPES) if args.shapes == "all" else args.shapes.split(",")
    print("| shape | MB | lines | read_ini CPU s | MB/s | parse_ini CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for shape in shapes:
        for size in sizes:
            text = SHAPES[shape](int(size * MB))
            lines = text.count("\n")
            read = cpu(lambda text=text: read_ini(text, "bench.ini"))
            if read > args.give_up:
                print(f"| {shape} | {len(text) / MB:.1f} | {lines:,} | {read:.2f} | - | - |")
                print(f"| {shape} | larger sizes not tried (over {args.give_up:g} s) | | | | |")
                break
            parse = cpu(lambda text=text: parse_ini(text, "bench.ini"))
            rate = len(text) / MB / max(read, 1e-9)
            print(
                f"| {shape} | {len(text) / MB:.1f} | {lines:,} | {read:.2f} | {rate:.0f} "
                f"| {parse:.2f} |",
                flush=True,
            )
            del text


if __name__ == "__main__":
    main()
