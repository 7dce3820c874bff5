"""The ``ocsd`` command: run | check-config | ctl | simulate | sink | schema | demo."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocsd.config.ranges import HTTP_RESPONSE_TIMEOUT
from ocsd.config.settings import (
    ConfigError,
    Settings,
    describe_settings,
    environment_settings,
    launch_settings,
    load_settings,
)
from ocsd.core.genesys import (
    GSW_AUTO_COMPLETION,
)
from ocsd.core.verdict import Threshold, ThresholdError, parse_thresholds
from ocsd.logs.redact import redact_uri

CONFIG_HELP = "INI file (default: $OCSD_CONFIG, else the example embedded in the package)"


def _duration(text: str) -> float:
    """argparse type of ``--duration``: a usage error (exit 2) naming the accepted form."""
    from ocsd.config.ranges import RUN_DURATION
    from ocsd.core.verdict import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    problem = RUN_DURATION.problem(seconds)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return seconds


def _thresholds(text: str) -> tuple[Threshold, ...]:
    """argparse type of ``--threshold`` (one, or several separated by commas): a usage
    error naming what is wrong with it."""
    try:
        return parse_thresholds([text])
    except ThresholdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config_path(args: argparse.Namespace) -> str | None:
    return args.config or launch_settings().config


def cmd_run(args: argparse.Namespace) -> int:
    # Parsing and validating the INI allocates long-lived objects and next to no cyclic
    # garbage, and full collections over a growing heap cost about a third of start-up
    # at 20,000 groups (bench/bench_settings.py: gc on vs off; bench/scale.py start-up).
    # ``run`` keeps the collector off while it builds the daemon and turns it back on
    # once start-up is done (ocsd.service.daemon._settle_heap).
    gc.disable()
    try:
        settings = load_settings(_config_path(args))
    except ConfigError as exc:
        gc.enable()
        print(f"ocsd: configuration error: {exc}", file=sys.stderr)
        return 2
    from ocsd.logs import configure_logging  # aiohttp & co.: once the configuration holds
    from ocsd.service.bounded_run import RunBounds
    from ocsd.service.daemon import run

    configure_logging(settings.log_format)
    thresholds = tuple(t for given in args.threshold for t in given)
    bounds = RunBounds.of(settings, args.duration, thresholds, args.summary_json, args.report)
    return run(settings, _config_path(args), start_all=args.start_all, bounds=bounds)


def cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(f"ocsd: configuration error: {exc}", file=sys.stderr)
        return 2
    if faults := settings.fault_rates().described():
        print(f"ocsd: WARNING: [faults] injects faults on purpose: {faults}", file=sys.stderr)
    print(f"# effective settings of {path or 'the embedded example'} (environment applied)")
    print(describe_settings(settings))
    print(
        f"# OK: {len(settings.campaign_groups)} campaign group(s), "
        f"{len(settings.calling_lists)} calling list(s)",
    )
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from ocsd.receiver.sink import run  # aiohttp is imported only by the commands that serve

    return run(args)


def cmd_schema(_args: argparse.Namespace) -> int:
    from ocsd.receiver.validate import schema_text

    sys.stdout.write(schema_text())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ocsd.cli.demo import run

    return run(args)


# -- ctl: a small client of the control API -------------------------------------------

CTL_REQUESTS = {
    "load": "LoadCampaign",
    "start": "StartDialing",
    "setmode": "SetDialingMode",
    "stop": "StopDialing",
    "unload": "UnloadCampaign",
    "force-unload": "ForceUnloadCampaign",
}


def _control_settings(args: argparse.Namespace) -> Settings:
    """The daemon's settings as ``ocsd ctl`` can know them: --config (or $OCSD_CONFIG,
    else the embedded example) with the environment applied; the environment alone if
    that file cannot be read."""
    try:
        return load_settings(_config_path(args))
    except ConfigError:
        return environment_settings()


def _control_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    host = settings.control_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{settings.control_port}"


def _control_token(args: argparse.Namespace, settings: Settings) -> str | None:
    """--token, else [ocsd] control-token ($OCSD_CONTROL_TOKEN or the file)."""
    if args.token:
        return str(args.token)
    secret = settings.control_token
    return secret.get_secret_value() if secret is not None else None


def _call(method: str, url: str, timeout: float, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":  # urllib would say form-urlencoded, which the control API refuses
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        url, method=method, data=b"" if method == "POST" else None, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": raw.decode("utf-8", "replace")}


#: ``ocsd ctl --timeout``: as http-response-timeout (inf, nan or -1 raised in urllib).
CTL_TIMEOUT = HTTP_RESPONSE_TIMEOUT


#: Groups asked for per page when ``ocsd ctl status`` lists them all.
CTL_PAGE = 1000


def _every_group(base: str, timeout: float, token: str | None) -> tuple[int, Any]:
    """Every group, following the control API's pages (``next``) to the last one."""
    groups: list[Any] = []
    path: str | None = f"/campaigngroups?limit={CTL_PAGE}"
    seen: set[str] = set()
    while path is not None and path not in seen:
        seen.add(path)
        code, page = _call("GET", base + path, timeout, token)
        if code != 200 or not isinstance(page, dict):
            return code, page
        groups.extend(page.get("campaigngroups", []))
        path = page.get("next")
    return 200, {"campaigngroups": groups, "total": len(groups)}


def cmd_ctl(args: argparse.Namespace) -> int:
    if problem := CTL_TIMEOUT.problem(args.timeout):
        print(f"ocsd ctl: --timeout: {problem}", file=sys.stderr)
        return 2
    settings = _control_settings(args)
    base = _control_url(args, settings)
    token = _control_token(args, settings)
    try:
        if args.action == "status" and args.dbid:
            code, data = _call("GET", f"{base}/campaigngroups/{args.dbid}", args.timeout, token)
        elif args.action == "status":
            code, data = _every_group(base, args.timeout, token)
        elif args.action == "health":
            code, data = _call("GET", f"{base}/healthz", args.timeout)
        else:
            query: dict[str, str] = {"req": CTL_REQUESTS[args.action]}
            for name in ("dialmode", "optimizeby", "optimizegoal"):
                value = getattr(args, name, None)
                if value is not None:
                    query[name] = str(value)
            if getattr(args, "auto_complete", None) is not None:
                query[GSW_AUTO_COMPLETION] = "1" if args.auto_complete else "0"
            url = f"{base}/campaigngroups/{args.dbid}?{urllib.parse.urlencode(query)}"
            code, data = _call("POST", url, args.timeout, token)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        where = redact_uri(base)
        print(f"ocsd ctl: cannot reach the control API at {where}: {reason}", file=sys.stderr)
        return 3
    print(json.dumps(data, indent=2))
    return 0 if 200 <= code < 300 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocsd",
        description="Simulator of the Genesys OCS campaign engine and its CampaignGroupState feed.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_run(commands)

    check = commands.add_parser("check-config", help="validate a configuration and print it")
    check.add_argument("--config", "-c", help=CONFIG_HELP)
    check.set_defaults(func=cmd_check_config)

    _add_ctl(commands)

    from ocsd.cli import simulate as simulate_command

    simulate = commands.add_parser(
        "simulate", help="run one group's dialing simulation offline, as fast as the CPU allows"
    )
    simulate_command.configure_parser(simulate)
    simulate.set_defaults(func=simulate_command.run)

    _add_sink(commands)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema (draft 2020-12) of the CampaignGroupState body"
    )
    schema.set_defaults(func=cmd_schema)

    from ocsd.cli import demo as demo_command

    demo = commands.add_parser(
        "demo",
        help="the daemon, the sink and its dashboard in one process, every example group running",
        description=(
            "Run the sink (with its dashboard) and the daemon on the bundled example "
            "configuration, posting to that sink, every group loaded and started, at a time "
            "scale where the statistics move. Prints the dashboard URL; Ctrl-C stops it."
        ),
    )
    demo_command.configure_parser(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", help=CONFIG_HELP)
    run.add_argument(
        "--start-all",
        action="store_true",
        help="load and start every configured group at start-up (actor 2, as a schedule)",
    )
    run.add_argument(
        "--duration",
        type=_duration,
        metavar="TIME",
        help="stop by itself this long after start-up, e.g. 90s, 10m, 1h30m, and print the "
        "run summary (default: [ocsd] duration / $OCSD_DURATION, else run until stopped)",
    )
    run.add_argument(
        "--threshold",
        action="append",
        default=[],
        type=_thresholds,
        metavar="CHECK",
        help="a pass/fail check of the run, e.g. 'post_latency_p99 < 200ms' or "
        "'delivered_rate >= 0.99'; repeatable; exit code 4 when one fails "
        "(default: [ocsd] thresholds / $OCSD_THRESHOLDS)",
    )
    run.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the run summary as JSON to FILE",
    )
    run.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write a self-contained HTML report with charts over time (receiver "
        "latency, throughput, failures by reason, per-group delivery gaps) to FILE.html",
    )
    run.set_defaults(func=cmd_run)


def _add_ctl(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ctl = commands.add_parser("ctl", help="drive a running daemon through its control API")
    ctl.add_argument(
        "--url", help="control API base URL (default: from --config, else http://127.0.0.1:8090)"
    )
    ctl.add_argument("--config", "-c", help="read control-host/control-port from this INI")
    ctl.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for an answer (0.1 to 3600)"
    )
    ctl.add_argument(
        "--token",
        help="bearer token of [ocsd] control-token (default: $OCSD_CONTROL_TOKEN, else --config)",
    )
    actions = ctl.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="all groups, or one by DBID")
    status.add_argument("dbid", nargs="?", type=int)
    actions.add_parser("health", help="the daemon's /healthz")
    for name in CTL_REQUESTS:
        sub = actions.add_parser(name, help=f"{CTL_REQUESTS[name]} request for a group")
        sub.add_argument("dbid", type=int)
        if name in ("start", "setmode"):
            sub.add_argument(
                "--dialmode", "--mode", dest="dialmode", help="e.g. predictive, progressive, 1"
            )
            sub.add_argument("--optimizeby", help="e.g. busy-factor, overdial-rate, 1")
            sub.add_argument("--optimizegoal", "--goal", dest="optimizegoal", type=int)
        if name in ("load", "start", "setmode"):
            sub.add_argument(
                "--auto-complete",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="GSW_AUTO_COMPLETION for this request",
            )
    ctl.set_defaults(func=cmd_ctl)


def _add_sink(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sink = commands.add_parser(
        "sink",
        help="a receiver that validates every message (schema and life cycle), with a dashboard",
        description=(
            "Accept CampaignGroupState POSTs, judge each against the JSON Schema and the "
            "life-cycle rules (2xx valid, 4xx with a JSON error naming the field or rule), "
            "log one line per message, and serve a live dashboard at /."
        ),
    )
    sink.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sink.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free)")
    sink.add_argument(
        "--record", type=Path, help="append every message and its verdict as JSON lines"
    )
    sink.add_argument(
        "--max-body",
        type=int,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest body accepted; larger ones get 413 (default 1 MiB)",
    )
    sink.add_argument(
        "--keep-bytes",
        type=int,
        default=32 * 1024 * 1024,
        metavar="BYTES",
        help="memory the latest messages (GET /messages) may take, as JSON text; the oldest "
        "go first (default 32 MiB; at most 1,000 messages in any case)",
    )
    sink.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="close a connection idle this long (before a request or between two; default 60)",
    )
    sink.add_argument(
        "--max-connections",
        type=int,
        default=1024,
        metavar="N",
        help="connections open at once; a new one past it closes the oldest idle one "
        "(default 1024, lowered to fit under the file limit)",
    )
    sink.add_argument("--log-format", choices=["json", "console"], default="json")
    sink.set_defaults(func=cmd_sink)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
