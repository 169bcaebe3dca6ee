"""The server command: bind, load the model once, serve the page and the API with uvicorn. ``python app.py``
(in the checkout) and the installed ``idphoto-app`` command both run :func:`main`.

The model is loaded once and stays warm. Every option of infer.py (idphoto/options.py, one definition for
both) is accepted too: the model, device, threads and --spec-file are the server's, set here; the others set
the defaults a request starts from, and each request may change them. The server's own flags come from
:class:`idphoto.web.config.ServerConfig`.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

from core.cli import EXIT_OK, OneLineParser, guarded


def build_parser(prog: str = "app.py") -> argparse.ArgumentParser:
    from idphoto.options import IDPhotoOptions
    from idphoto.web import config as server

    p = OneLineParser(
        prog=prog,
        description="Serve the ID-photo page and HTTP API (FastAPI + uvicorn): POST /api/idphoto, /api/matte, "
                    "/api/layout; GET /api/specs, /healthz; OpenAPI docs at /docs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    srv = p.add_argument_group("server")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on; only this machine can connect unless you pass e.g. 0.0.0.0 "
                          "(photos then travel unencrypted: put a TLS proxy in front)")
    srv.add_argument("--port", type=int, default=7860, help="TCP port (0: any free port, printed at start)")
    server.add_server_arguments(srv)   # the pool, the limits, --save-dir: idphoto.web.config.ServerConfig's fields
    srv.add_argument("--quiet", action="store_true", help="no access log (one line per request)")
    srv.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected start-up error")
    IDPhotoOptions.add_arguments(p)
    return p


def check_args(args, parser):
    from idphoto.options import IDPhotoOptions, OptionsError
    from idphoto.web import config as server

    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    for problem in server.server_problems(args)[:1]:
        parser.error(problem)
    options = IDPhotoOptions.from_args(args)
    try:
        options.load_spec_files()  # served to every request, and listed by GET /api/specs
        options.validate()
    except OptionsError as exc:
        parser.error(str(exc))
    return options


def listen(host: str, port: int) -> socket.socket:
    """Bind before loading anything, so a taken port is one clear line, not a log message after the load."""
    from idphoto.errors import IDPhotoError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise IDPhotoError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise IDPhotoError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args, parser) -> int:
    options = check_args(args, parser)
    if args.list_specs:
        from idphoto.specs import text_table

        print(text_table())
        return EXIT_OK
    sock = listen(args.host, args.port)
    import uvicorn

    from core.runtime import pick_device
    from idphoto.runner import open_trimap_model
    from idphoto.web.app import create_app
    from idphoto.web.config import server_config

    try:
        device = pick_device(options.device)
    except ValueError as exc:
        parser.error(str(exc))
    # One photo per worker at once: give each worker its share of the cores rather than every core each.
    threads = options.threads or max(1, (os.cpu_count() or 1) // args.workers)
    model = open_trimap_model(options.checkpoint, device, threads, options.input_size)
    name = getattr(model, "arch", None) or {}
    config = server_config(args, device=device, model_name=str(options.checkpoint or "shipped compact model")
                           + (f" ({name.get('backbone')})" if name.get("backbone") else ""))
    app = create_app(model, config, options)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"ID photo app: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; Ctrl-C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach it", file=sys.stderr, flush=True)
    if args.save_dir:
        print(f"note: uploads and results are kept in {args.save_dir} (--save-dir)", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning" if args.quiet else "info",
                                           access_log=not args.quiet, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return EXIT_OK


def main(argv=None, prog: str = "app.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from idphoto.errors import IDPhotoError
    from models import WeightsError

    return guarded(prog, lambda: run(args, parser), (IDPhotoError, WeightsError), args.debug,
                   interrupted="stopped")


def command() -> int:
    """The installed ``idphoto-app`` command (``[project.scripts]`` in pyproject.toml)."""
    return main(prog="idphoto-app")
