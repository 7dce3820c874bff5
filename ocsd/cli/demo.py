"""``ocsd demo``: the whole product in one command, with nothing else running.

One process: the sink (receiver, validator and dashboard) on 127.0.0.1, then the daemon
on the bundled example configuration, posting to that sink, every example group loaded
and started at once (actor 2, as a schedule would), at a time scale where the
statistics move within seconds. Ctrl-C (SIGINT) or SIGTERM stops the daemon, lets its
last notifications reach the sink, then stops the sink: exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import MutableMapping
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocsd.config.settings import Settings
    from ocsd.service.daemon import Daemon

# Only the standard library at import time: the parser is built for every `ocsd` command.

DEFAULT_PORT = 8080
DEFAULT_CONTROL_PORT = 8090
DEFAULT_TIME_SCALE = 60.0
DEFAULT_INTERVAL = 2
HOST = "127.0.0.1"
#: Seconds a stop may take before the demo gives up waiting (in-flight POSTs to itself).
STOP_GRACE = 3.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    # the ranges of the options they stand for (time-scale, campaigngroup-states-interval)
    from ocsd.cli.arguments import bounded, listen_port, record_path
    from ocsd.config import ranges

    parser.add_argument(
        "--port",
        type=listen_port,
        default=DEFAULT_PORT,
        help=f"port of the sink and dashboard on {HOST}, 1 to 65535 (0: any free port)",
    )
    parser.add_argument(
        "--control-port",
        type=listen_port,
        default=DEFAULT_CONTROL_PORT,
        help=f"port of the daemon's control API on {HOST}, 1 to 65535 (0: any free port)",
    )
    parser.add_argument(
        "--time-scale",
        type=bounded(ranges.TIME_SCALE),
        default=DEFAULT_TIME_SCALE,
        metavar="FACTOR",
        help=f"simulated seconds per wall second ({ranges.TIME_SCALE.allowed()})",
    )
    parser.add_argument(
        "--interval",
        type=bounded(ranges.INTERVAL),
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="seconds between periodic notifications (0 turns them off)",
    )
    parser.add_argument(
        "--record",
        type=record_path,
        metavar="FILE",
        help="also append every message and its verdict as JSON lines (default: no record)",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="leave out the per-message log lines (81000/81001 and the sink's verdicts)",
    )
    parser.add_argument(
        "--log-format",
        choices=["console", "json", "genesys"],
        default="console",
        help="how log lines look",
    )


def _quiet_filter(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drops the per-message records; refusals and everything else stay."""
    import structlog

    from ocsd.core.genesys import TRACE_MESSAGES

    if event.get("msgid") in TRACE_MESSAGES or event.get("event") == "notification received":
        raise structlog.DropEvent
    return event


def _print(text: str) -> None:
    print(text, flush=True)


async def demo(args: argparse.Namespace) -> int:
    from ocsd.config.settings import ConfigError, load_settings

    try:
        example = load_settings(None)  # the bundled example, OCSD_* environment applied
    except ConfigError as exc:
        _print(f"ocsd demo: configuration error: {exc}")
        return 2

    try:
        record = args.record.open("ab") if args.record else None
    except OSError as exc:
        _print(f"ocsd demo: cannot open the record file {args.record}: {exc.strerror or exc}")
        return 2
    try:
        return await _demo(args, example, record)
    finally:
        if record is not None:
            record.close()


async def _demo(args: argparse.Namespace, example: Settings, record: IO[bytes] | None) -> int:
    from ocsd.logs import get_logger

    log = get_logger("ocsd.cli.demo")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:  # from here on, Ctrl-C stops everything cleanly
        loop.add_signal_handler(sig, stop.set)
    try:
        return await _serve(args, example, record, stop, log)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _serve(
    args: argparse.Namespace,
    example: Settings,
    record: IO[bytes] | None,
    stop: asyncio.Event,
    log: Any,
) -> int:
    from ocsd.receiver.sink import Sink, create_app, start_site
    from ocsd.service.daemon import Daemon, StartupError

    sink = Sink(record, terse=args.log_format != "json")
    try:
        runner, port = await start_site(create_app(sink), HOST, args.port)
    except OSError as exc:
        _print(
            f"ocsd demo: cannot listen on {HOST}:{args.port} for the sink and dashboard: "
            f"{exc.strerror or exc}. Is another ocsd demo or sink running? "
            "Choose another port with --port (0 picks a free one)."
        )
        return 2

    sink_url = f"http://{HOST}:{port}"
    settings = _demo_settings(args, example, sink_url)
    daemon = Daemon(settings, None, start_all=True)
    try:
        await daemon.startup()
    except StartupError as exc:
        await runner.cleanup()
        _print(f"ocsd demo: {exc}. Choose another port with --control-port (0 picks a free one).")
        return 2

    _print(_banner(args, daemon, sink_url))

    try:
        await stop.wait()
    finally:
        log.info("ocsd demo stopping")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.shutdown_grace + STOP_GRACE):
                await daemon.shutdown()
        await runner.cleanup()
        log.info("ocsd demo stopped", accepted=sink.accepted, refused=sink.refused)
    return 0


def _demo_settings(args: argparse.Namespace, example: Settings, sink_url: str) -> Settings:
    """The bundled example, sending to the embedded sink at the demo's pace."""
    return example.model_copy(
        update={
            "send_campaigngroup_states": True,
            "campaigngroup_states_uri": f"{sink_url}/ocs/campaign-group-state",
            "campaigngroup_states_interval": args.interval,
            "time_scale": args.time_scale,
            "control_host": HOST,
            "control_port": args.control_port,
            "log_format": args.log_format,
        }
    )


def _banner(args: argparse.Namespace, daemon: Daemon, sink_url: str) -> str:
    control_url = f"http://{HOST}:{daemon.control_port}"
    groups = ", ".join(f"{g.identity.name} ({g.identity.dbid})" for g in daemon.engine.groups)
    return (
        "\n"
        f"  ocsd demo: {len(daemon.engine)} campaign groups loaded and started: {groups}\n"
        f"  time scale x{args.time_scale:g}, a periodic notification every {args.interval} s\n"
        "\n"
        f"  Dashboard:    {sink_url}/\n"
        f"  Control API:  {control_url}/campaigngroups   "
        f"(e.g. ocsd ctl --url {control_url} stop 101)\n"
        f"  Schema:       {sink_url}/schema\n"
        "\n"
        "  Press Ctrl-C to stop.\n"
    )


def run(args: argparse.Namespace) -> int:
    import structlog
    import uvloop

    from ocsd.logs import configure_logging

    configure_logging(args.log_format)
    if args.quiet:
        processors = structlog.get_config()["processors"]
        structlog.configure(processors=[_quiet_filter, *processors])
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            code = runner.run(demo(args))
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        return 130
    sys.stdout.flush()
    return code
