"""The ``ocsd`` command: run | check-config | ctl | simulate | sink | schema | demo."""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, TypeAlias

from ocsd.cli.arguments import (
    Parser,
    base_url,
    bearer_token,
    bounded,
    file_path,
    genesys_value,
    host,
    http_url,
    listen_port,
    output_file,
    record_path,
)
from ocsd.config.ranges import (
    CONTROL_IDLE_TIMEOUT,
    CONTROL_MAX_CONNECTIONS,
    DBID,
    HTTP_RESPONSE_TIMEOUT,
    OPTIMIZE_GOAL,
    REPLAY_SPEED,
    Bound,
)
from ocsd.config.settings import (
    ConfigError,
    Settings,
    describe_settings,
    launch_settings,
    load_settings,
    shard_summary,
    silence_warnings,
    template_expansions,
)
from ocsd.core.genesys import GSW_AUTO_COMPLETION, DialMode, OptimizeBy
from ocsd.core.verdict import Threshold, ThresholdError, parse_thresholds
from ocsd.logs.redact import redact_uri
from ocsd.service import API_HEADER, CONTROL_API

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


def cmd_replay(args: argparse.Namespace) -> int:
    """Send a recorded feed to ``--uri``: the settings of ``--config`` for the HTTP client
    and signing, the ``ocs`` delivery mode, sending on."""
    try:
        settings = load_settings(_config_path(args))
    except ConfigError as exc:
        print(f"ocsd: configuration error: {exc}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"ocsd replay: {args.file}: no such file", file=sys.stderr)
        return 2
    import asyncio

    import uvloop

    from ocsd.logs import configure_logging
    from ocsd.service.bounded_run import RunBounds
    from ocsd.service.replay import ReplayOptions, replay

    configure_logging(settings.log_format)
    settings = settings.model_copy(
        update={
            "send_campaigngroup_states": True,
            "campaigngroup_states_uri": args.uri,
            "delivery_mode": "ocs",
        }
    )
    thresholds = tuple(t for given in args.threshold for t in given)
    bounds = RunBounds(None, thresholds, args.summary_json, args.report)
    options = ReplayOptions(args.file, args.speed, args.rebase_time, bounds)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(replay(settings, options))


def cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(f"ocsd: configuration error: {exc}", file=sys.stderr)
        return 2
    for warning in silence_warnings(settings):
        print(f"ocsd: warning: {warning}", file=sys.stderr)
    for line in template_expansions(path):
        print(f"# {line}")
    if faults := settings.fault_rates().described():
        print(f"ocsd: WARNING: [faults] injects faults on purpose: {faults}", file=sys.stderr)
    print(f"# effective settings of {path or 'the embedded example'} (environment applied)")
    print(describe_settings(settings))
    print(
        f"# OK: {len(settings.campaign_groups)} campaign group(s), "
        f"{len(settings.calling_lists)} calling list(s)",
    )
    if summary := shard_summary(settings):
        print(f"# {summary}")
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

#: Exit status of ``ocsd ctl`` when no control API answered (none there, or not ocsd's).
UNREACHABLE = 3

DBID_HELP = "the campaign group's DBID"

#: ``ocsd ctl --timeout``: as http-response-timeout.
CTL_TIMEOUT = HTTP_RESPONSE_TIMEOUT

#: ``ocsd sink`` options: a body up to 1 GiB, up to 64 GiB of kept messages; the idle
#: timeout and connection cap as the control API's.
MAX_BODY = Bound(1, 1024**3, "bytes", whole=True)
KEEP_BYTES = Bound(1, 64 * 1024**3, "bytes", whole=True)
IDLE_TIMEOUT = CONTROL_IDLE_TIMEOUT
MAX_CONNECTIONS = CONTROL_MAX_CONNECTIONS

#: ``ocsd ctl health`` reads the /healthz of the daemon or of an ``ocsd sink``.
HEALTH_OF = frozenset({CONTROL_API, "sink"})

#: Groups asked for per page when ``ocsd ctl status`` lists them all.
CTL_PAGE = 1000


def _control_settings(args: argparse.Namespace) -> Settings:
    """The daemon's settings as ``ocsd ctl`` can know them: --config (or $OCSD_CONFIG,
    else the embedded example) with the environment applied. ConfigError if that cannot
    be read or holds a mistake: falling back on the defaults sent the request to another
    port, or without the token, in silence."""
    return load_settings(_config_path(args))


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


class NotControlApi(Exception):
    """What answered at the URL is not an ocsd control API (a sink, another server)."""


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"error": raw.decode("utf-8", "replace")}


def _call(
    method: str,
    url: str,
    timeout: float,
    token: str | None = None,
    served_by_ok: frozenset[str] = frozenset({CONTROL_API}),
) -> tuple[int, Any]:
    """One request; the status and the decoded JSON answer. Raises NotControlApi when the
    answer's ``X-Ocsd-Api`` header is not one of ``served_by_ok`` (the control API's)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":  # urllib would say form-urlencoded, which the control API refuses
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        url, method=method, data=b"" if method == "POST" else None, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            code, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        code, answer_headers, raw = exc.code, exc.headers, exc.read()
    served_by = answer_headers.get(API_HEADER, "") if answer_headers is not None else ""
    if served_by not in served_by_ok:
        path = urllib.parse.urlsplit(url).path
        raise NotControlApi(not_control_api(method, path, code, served_by))
    return code, _decoded(raw)


def not_control_api(method: str, path: str, code: int, served_by: str) -> str:
    """Why an answer shows that ``ocsd ctl`` reached something else than the control API."""
    what = "an ocsd sink (the receiver)" if served_by == "sink" else "not an ocsd control API"
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = ""
    return (
        f"is {what}: {method} {path} answered {code} {reason}".rstrip()
        + "; the daemon's control API listens on control-port (default 8090): "
        "check --url or --config"
    )


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


def _ctl_request(args: argparse.Namespace, base: str, token: str | None) -> tuple[int, Any]:
    """The request ``args`` asks for, sent; its status and answer."""
    if args.action == "status" and args.dbid:
        return _call("GET", f"{base}/campaigngroups/{args.dbid}", args.timeout, token)
    if args.action == "status":
        return _every_group(base, args.timeout, token)
    if args.action == "health":  # the sink's too: its container's health check uses it
        return _call("GET", f"{base}/healthz", args.timeout, served_by_ok=HEALTH_OF)
    query: dict[str, str] = {"req": CTL_REQUESTS[args.action]}
    for name in ("dialmode", "optimizeby", "optimizegoal"):
        value = getattr(args, name, None)
        if value is not None:
            query[name] = str(value)
    if getattr(args, "auto_complete", None) is not None:
        query[GSW_AUTO_COMPLETION] = "1" if args.auto_complete else "0"
    url = f"{base}/campaigngroups/{args.dbid}?{urllib.parse.urlencode(query)}"
    return _call("POST", url, args.timeout, token)


def cmd_ctl(args: argparse.Namespace) -> int:
    try:
        settings = _control_settings(args)
    except ConfigError as exc:
        print(f"ocsd ctl: configuration error: {exc}", file=sys.stderr)
        return 2
    base = _control_url(args, settings)
    token = _control_token(args, settings)
    where = redact_uri(base)
    try:
        code, data = _ctl_request(args, base, token)
    except NotControlApi as exc:
        print(f"ocsd ctl: {where} {exc}", file=sys.stderr)
        return UNREACHABLE
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"ocsd ctl: cannot reach the control API at {where}: {reason}", file=sys.stderr)
        return UNREACHABLE
    print(json.dumps(data, indent=2))
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        print(f"ocsd ctl: {' '.join(data['message'].split())}", file=sys.stderr)
    return 0 if 200 <= code < 300 else 1


#: The subcommands of a parser (``ocsd``'s commands, ``ocsd ctl``'s actions).
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"

RUN_EPILOG = (
    "Environment: OCSD_CONFIG names the INI file when --config is not given. Every option "
    "of the [ocsd] and [OCServer] sections can also be set as OCSD_<OPTION> (upper case, "
    "'-' as '_'), e.g. OCSD_CONTROL_PORT=8091 or OCSD_CAMPAIGNGROUP_STATES_URI=...; the "
    "environment wins over the file. SIGHUP reloads the file; SIGTERM stops the daemon."
)


def _command(
    commands: Commands,
    name: str,
    summary: str,
    description: str | None = None,
    **kwargs: Any,
) -> Parser:
    """A subcommand listed with its one-line ``summary`` (also its description unless a
    longer one is given)."""
    parser: Parser = commands.add_parser(
        name,
        help=summary,
        description=description or f"{summary[0].upper()}{summary[1:]}.",
        **kwargs,
    )
    return parser


def _config_option(parser: argparse.ArgumentParser, text: str = CONFIG_HELP) -> None:
    parser.add_argument("--config", "-c", type=file_path, metavar="FILE", help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ocsd",
        description="Simulator of the Genesys OCS campaign engine and its CampaignGroupState feed.",
        epilog="Run 'ocsd COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_run(commands)

    check = _command(
        commands, "check-config", "validate a configuration and print its effective settings"
    )
    _config_option(check)
    check.set_defaults(func=cmd_check_config)

    _add_ctl(commands)

    from ocsd.cli import simulate as simulate_command

    simulate = _command(
        commands,
        "simulate",
        "run one group's dialing simulation offline, as fast as the CPU allows",
    )
    simulate_command.configure_parser(simulate)
    simulate.set_defaults(func=simulate_command.run)

    _add_sink(commands)
    _add_replay(commands)

    schema = _command(
        commands, "schema", "print the JSON Schema (draft 2020-12) of the CampaignGroupState body"
    )
    schema.set_defaults(func=cmd_schema)

    from ocsd.cli import demo as demo_command

    demo = _command(
        commands,
        "demo",
        "the daemon, the sink and its dashboard in one process, every example group running",
        description=(
            "Run the sink (with its dashboard) and the daemon on the bundled example "
            "configuration, posting to that sink, every group loaded and started, at a time "
            "scale where the statistics move. Prints the dashboard URL; Ctrl-C stops it."
        ),
    )
    demo_command.configure_parser(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def _add_run(commands: Commands) -> None:
    run = _command(commands, "run", "run the daemon", epilog=RUN_EPILOG)
    _config_option(run)
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
    _add_verdict_options(run)
    run.set_defaults(func=cmd_run)


def _add_verdict_options(parser: argparse.ArgumentParser) -> None:
    """What ends a run with a verdict: thresholds, the JSON summary, the HTML report."""
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        type=_thresholds,
        metavar="CHECK",
        help="a pass/fail check of the run, e.g. 'post_latency_p99 < 200ms' or "
        "'delivered_rate >= 0.99'; repeatable; exit code 4 when one fails "
        "(default: [ocsd] thresholds / $OCSD_THRESHOLDS)",
    )
    parser.add_argument(
        "--summary-json",
        type=output_file,
        metavar="FILE",
        help="also write the run summary as JSON to FILE (default: no file)",
    )
    parser.add_argument(
        "--report",
        type=output_file,
        metavar="FILE.html",
        help="also write a self-contained HTML report with charts over time (receiver "
        "latency, throughput, failures by reason, per-group delivery gaps) to FILE.html "
        "(default: no report)",
    )


def _add_replay(commands: Commands) -> None:
    replay = _command(
        commands,
        "replay",
        "send a recorded feed (ocsd sink --record, or JSON lines of bodies) to a receiver",
        description=(
            "Post every body of FILE to --uri, each group's in order, spaced as recorded "
            "(divided by --speed), with the 81000/81001 lines, the run summary, thresholds "
            "and report of `ocsd run --duration`. A line that cannot be replayed is named "
            "and skipped."
        ),
    )
    replay.add_argument("file", type=record_path, metavar="FILE", help="the recorded feed")
    replay.add_argument(
        "--uri", type=http_url, required=True, help="the receiver's URL (required, no default)"
    )
    replay.add_argument(
        "--speed",
        type=bounded(REPLAY_SPEED),
        default=1.0,
        help="how much faster than recorded (2: twice as fast; 0: as fast as the pool allows)",
    )
    replay.add_argument(
        "--rebase-time",
        action="store_true",
        help="set GSW_DATE_TIME to the moment each body is sent (default: as recorded)",
    )
    _config_option(
        replay, "INI file for the HTTP client, signing and log format (default: $OCSD_CONFIG)"
    )
    _add_verdict_options(replay)
    replay.set_defaults(func=cmd_replay)


def _add_ctl(commands: Commands) -> None:
    ctl = _command(
        commands,
        "ctl",
        "drive a running daemon through its control API",
        description=(
            "Send a request to a running daemon's control API and print its JSON answer. "
            "Exit status: 0 done, 1 the daemon refused, 2 a bad argument, 3 the control API "
            "could not be reached (or the URL is not an ocsd control API)."
        ),
    )
    ctl.add_argument(
        "--url",
        type=base_url,
        help="control API base URL (default: control-host and control-port of --config, "
        "else http://127.0.0.1:8090)",
    )
    _config_option(
        ctl,
        "INI file to read control-host, control-port and control-token from "
        "(default: $OCSD_CONFIG, else the embedded example)",
    )
    ctl.add_argument(
        "--timeout",
        type=bounded(CTL_TIMEOUT),
        default=5.0,
        metavar="SECONDS",
        help=f"seconds to wait for an answer ({CTL_TIMEOUT.allowed()})",
    )
    ctl.add_argument(
        "--token",
        type=bearer_token,
        help="bearer token of [ocsd] control-token (default: $OCSD_CONTROL_TOKEN, else --config)",
    )
    _add_ctl_actions(ctl.add_subparsers(dest="action", required=True, metavar="ACTION"))
    ctl.set_defaults(func=cmd_ctl)


def _add_ctl_actions(actions: Commands) -> None:
    status = _command(actions, "status", "show every group, or the one with this DBID")
    status.add_argument("dbid", nargs="?", type=bounded(DBID), help=DBID_HELP + " (default: all)")
    _command(actions, "health", "show the daemon's /healthz (liveness; an ocsd sink's too)")
    for name, request in CTL_REQUESTS.items():
        sub = _command(
            actions,
            name,
            f"send {'an' if request[0] in 'AEIOU' else 'a'} {request} request for a group",
        )
        sub.add_argument("dbid", type=bounded(DBID), help=DBID_HELP)
        if name in ("start", "setmode"):
            sub.add_argument(
                "--dialmode",
                "--mode",
                dest="dialmode",
                type=genesys_value(DialMode),
                help="e.g. predictive, progressive, 1 (default: the group's dial-mode)",
            )
            sub.add_argument(
                "--optimizeby",
                type=genesys_value(OptimizeBy),
                help="e.g. busy-factor, overdial-rate, 1 (default: the group's optimize-by)",
            )
            sub.add_argument(
                "--optimizegoal",
                "--goal",
                dest="optimizegoal",
                type=bounded(OPTIMIZE_GOAL),
                help="percent or seconds, as optimize-by wants (default: the group's "
                "optimize-goal)",
            )
        if name in ("load", "start", "setmode"):
            sub.add_argument(
                "--auto-complete",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="GSW_AUTO_COMPLETION for this request (default: the group's auto-complete)",
            )


def _add_sink(commands: Commands) -> None:
    sink = _command(
        commands,
        "sink",
        "a receiver that validates every message (schema and life cycle), with a dashboard",
        description=(
            "Accept CampaignGroupState POSTs, judge each against the JSON Schema and the "
            "life-cycle rules (2xx valid, 4xx with a JSON error naming the field or rule), "
            "log one line per message, and serve a live dashboard at /."
        ),
    )
    sink.add_argument("--host", type=host, default="127.0.0.1", help="address to listen on")
    sink.add_argument(
        "--port",
        type=listen_port,
        default=8080,
        help="port to listen on, 1 to 65535 (0: any free port, shown in the start-up line)",
    )
    sink.add_argument(
        "--record",
        type=record_path,
        metavar="FILE",
        help="append every message and its verdict as JSON lines (default: no record)",
    )
    _add_sink_limits(sink)
    sink.add_argument(
        "--log-format", choices=["json", "console"], default="json", help="how log lines look"
    )
    sink.add_argument(
        "--dashboard-url",
        type=http_url,
        metavar="URL",
        help="where people open the dashboard, when that is not the address listened on "
        "(a published container port, a proxy); only printed in the start-up line "
        "(default: http://HOST:PORT/, with 127.0.0.1 for 0.0.0.0)",
    )
    sink.set_defaults(func=cmd_sink)


def _add_sink_limits(sink: argparse.ArgumentParser) -> None:
    """What one sink takes at most: body size, memory, idle time, connections."""
    sink.add_argument(
        "--max-body",
        type=bounded(MAX_BODY),
        default=1024 * 1024,
        metavar="BYTES",
        help="largest body accepted; larger ones get 413",
    )
    sink.add_argument(
        "--keep-bytes",
        type=bounded(KEEP_BYTES),
        default=32 * 1024 * 1024,
        metavar="BYTES",
        help="memory the latest messages (GET /messages) may take, as JSON text; the oldest "
        "go first (at most 1,000 messages in any case)",
    )
    sink.add_argument(
        "--idle-timeout",
        type=bounded(IDLE_TIMEOUT),
        default=60.0,
        metavar="SECONDS",
        help="close a connection idle this long (before a request or between two)",
    )
    sink.add_argument(
        "--max-connections",
        type=bounded(MAX_CONNECTIONS),
        default=1024,
        metavar="N",
        help="connections open at once; a new one past it closes the oldest idle one "
        "(lowered to fit under the file limit)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
