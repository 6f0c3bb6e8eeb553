"""`learning-orchestra`: run the server, or print its OpenAPI document or gateway configuration.

Nothing heavy is imported at module level, on purpose: every job's worker process re-imports
the `__main__` module (multiprocessing's forkserver prepares each child like that), and
`core.api` pulls in FastAPI, the routes and the table readers, which a worker must not pay for
(tests/core/test_worker_imports.py checks it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _tools(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str] | None:
    """`--tool` (repeated and/or comma-separated), checked against `--step`'s tools."""
    if not args.tool:
        return None
    from .core.api import check_tools

    if not args.step:
        parser.error("argument --tool: serves some tools of one step service: give --step too")
    try:
        tools = [t.strip() for given in args.tool for t in given.split(",") if t.strip()]
        return check_tools(args.step, tools)
    except ValueError as exc:
        parser.error(f"argument --tool: {exc}")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from .core.api import create_app
    from .core.settings import SECRET_KEY, SettingError, get_settings, secret_value

    tools = _tools(args.parser, args)
    if args.data_dir:
        os.environ["LO_DATA_DIR"] = str(Path(args.data_dir).resolve())
    try:  # a setting that cannot be read stops the server with its message, not a traceback
        get_settings()
        secret_value(SECRET_KEY)  # read again by the artifact volume, once the app starts
    except (SettingError, ValidationError) as exc:
        sys.stderr.write(f"learning-orchestra serve: error: {exc}\n")
        return 2
    app = create_app([args.step] if args.step else None, tools=tools)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _banner(args.host, args.port)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=15
    )
    return 0


def _banner(host: str, port: int) -> None:
    """Log, once at start, where the API and its docs answer and where the data lives."""
    from .core.settings import BASE_PATH, get_settings

    settings = get_settings()
    # a wildcard address is not one a browser can open: show the loopback name instead
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"  # an IPv6 address in a URL
    url = f"http://{shown}:{port}"
    logging.getLogger("learning_orchestra").info(
        "Learning Orchestra: API %s%s | studio %s/studio/ | docs %s/docs | data directory %s",
        url,
        BASE_PATH,
        url,
        url,
        settings.data_dir.resolve(),
    )


def _openapi(args: argparse.Namespace) -> int:
    from .core.openapi import openapi_yaml

    text = openapi_yaml()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _gateway_config(args: argparse.Namespace) -> int:
    from .gateway import krakend_json

    try:
        text = krakend_json(
            host_pattern=args.host_pattern,
            port=args.port,
            shared_service=args.shared_service,
            max_upload_mb=args.max_upload_mb,
            gateway_port=args.gateway_port,
            splits=args.split or (),
        )
    except ValueError as exc:
        sys.stderr.write(f"learning-orchestra gateway-config: error: {exc}\n")
        return 2
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    # here, not at module level: see the module's docstring
    from .core.api import SERVICES
    from .gateway import GATEWAY_PORT, HOST_PATTERN, SERVICE_PORT, SHARED_SERVICE

    parser = argparse.ArgumentParser(prog="learning-orchestra", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the REST server (all services by default)")
    serve.add_argument("--host", default="127.0.0.1")
    # a string: argparse converts (and checks) a default as it does a --port given
    default_port = os.environ.get("LO_PORT") or "8080"
    serve.add_argument(
        "--port",
        type=int,
        default=default_port,
        help="default: LO_PORT, else 8080 (the images' health check asks LO_PORT too)",
    )
    serve.add_argument("--data-dir", help="artifact volume and embedded store (LO_DATA_DIR)")
    serve.add_argument(
        "--step",
        choices=SERVICES,
        metavar="SERVICE",
        help=f"serve only this step service, as a Swarm service does: {', '.join(SERVICES)}",
    )
    serve.add_argument(
        "--tool",
        action="append",
        metavar="TOOL",
        help="with --step: serve (and run the jobs of) only this tool of the step, e.g. "
        "--step train --tool pycaret, a heavy tool as a service of its own (gateway/README.md); "
        "repeatable, or comma-separated",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve, parser=serve)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document (YAML)")
    openapi.add_argument("--output", "-o", help="write to this file instead of stdout")
    openapi.set_defaults(func=_openapi)

    gateway = commands.add_parser(
        "gateway-config",
        help="print the KrakenD configuration (JSON) routing every step service's routes",
        description="The KrakenD 2.x configuration of a Swarm stack with one service per step "
        "(gateway/README.md); gateway/krakend.json is this command's output with the defaults.",
    )
    gateway.add_argument("--output", "-o", help="write to this file instead of stdout")
    gateway.add_argument(
        "--host-pattern",
        default=HOST_PATTERN,
        help="each step service's URL: {service} is its name (dataset, train, ...), {port} "
        "--port (default: %(default)s)",
    )
    gateway.add_argument(
        "--port", type=int, default=SERVICE_PORT, help="the step services' port (%(default)s)"
    )
    gateway.add_argument(
        "--shared-service",
        choices=SERVICES,
        default=SHARED_SERVICE,
        metavar="SERVICE",
        help="the service answering the routes every service serves: /health, /ready, "
        "/openapi.json, /docs, /redoc (default: %(default)s)",
    )
    gateway.add_argument(
        "--max-upload-mb",
        type=int,
        help="the services' LO_MAX_UPLOAD_MB, for the gateway's body limit (default: its default)",
    )
    gateway.add_argument(
        "--gateway-port", type=int, default=GATEWAY_PORT, help="KrakenD's port (%(default)s)"
    )
    gateway.add_argument(
        "--split",
        action="append",
        metavar="STEP/TOOL",
        help="route this tool's routes of the step to a service of its own, {STEP}-{TOOL} in "
        "--host-pattern (lo-train-pycaret: `serve --step train --tool pycaret`), the step's "
        "other routes staying with {STEP}; repeatable",
    )
    gateway.set_defaults(func=_gateway_config)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
