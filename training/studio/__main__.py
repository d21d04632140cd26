"""`python -m training.studio`: local Label Studio, sync, pre-annotation, ML backend."""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import StudioError

EPILOG = """\
environment:
  LABEL_STUDIO_URL       server URL (default http://127.0.0.1:8080); --url overrides it
  LABEL_STUDIO_API_KEY   API token (serve creates the user with it); --token overrides it
  LABEL_STUDIO_USERNAME  user e-mail, LABEL_STUDIO_PASSWORD its password (serve only)

typical session:
  python -m training.studio serve &                     # wait for the URL line
  python -m training.studio push                        # config + annotations/tasks.json
  # ... annotate in the browser ...
  python -m training.studio pull                        # -> annotations/pulled_export.json
  python -m training.run --config configs/tiny.yaml --set data.train=annotations/pulled_export.json
  python -m training.studio preannotate --model models/tiny-asean --order-by-uncertainty

errors (wrong token, server down, labels missing from the project, invalid export) are
one line on stderr and exit code 1.
"""


def _add_connection(parser: argparse.ArgumentParser, project: bool = True) -> None:
    from .client import DEFAULT_PROJECT

    parser.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL or http://127.0.0.1:8080)")
    parser.add_argument("--token", help="API token (default: $LABEL_STUDIO_API_KEY); prefer the variable, "
                                        "a flag shows in the process list")
    if project:
        parser.add_argument("--project", default=DEFAULT_PROJECT, metavar="TITLE",
                            help="project title (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    from .client import DEFAULT_CONFIG, DEFAULT_PULL, DEFAULT_TASKS

    parser = argparse.ArgumentParser(
        prog="python -m training.studio", description=__doc__.split("\n")[0].split(": ", 1)[1],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="start a local Label Studio listening on 127.0.0.1 only (data in .studio/)",
                                description="Start Label Studio with its data under --data-dir, listening on 127.0.0.1 "
                                            "only (Label Studio's --internal-host; no other interface accepts "
                                            "connections). The user and token come from LABEL_STUDIO_USERNAME, "
                                            "LABEL_STUDIO_PASSWORD and LABEL_STUDIO_API_KEY (created on the first "
                                            "start). Its SSRF protection stays on with one exception, 127.0.0.1, where "
                                            "the ML backend runs: ML backend, webhook and storage URLs at any other "
                                            "private, loopback or link-local address are refused. Prints the URL once "
                                            "/health answers; Ctrl-C stops it.")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument("--data-dir", default=".studio", help="Label Studio data directory (default: %(default)s)")
    serve.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for /health (default: %(default)s)")

    push = commands.add_parser("push", help="create/update the project and import tasks (idempotent)",
                               description="Create the project (or update its labeling config) and import tasks. "
                                           "Tasks already in the project (same data.source, else same text) are "
                                           "skipped, so pushing twice imports nothing the second time.")
    _add_connection(push)
    push.add_argument("--config", default=DEFAULT_CONFIG, help="labeling config (default: %(default)s)")
    push.add_argument("--tasks", nargs="+", default=[DEFAULT_TASKS], metavar="FILE",
                      help="a JSON task list and/or .txt files, one task each (default: %(default)s)")

    pull = commands.add_parser("pull", help="export the annotations (Label Studio JSON), validated, atomically",
                               description="Export the project's annotated tasks as a full Label Studio JSON export, "
                                           "validate it with training.data.readers.read_corpus against --config, then "
                                           "replace --out atomically and print what changed since the previous file. "
                                           "An invalid export never replaces --out (it is kept as *.rejected.json).")
    _add_connection(pull)
    pull.add_argument("--config", default=DEFAULT_CONFIG, help="labeling config to validate against (default: %(default)s)")
    pull.add_argument("--out", default=DEFAULT_PULL, help="export file (default: %(default)s)")
    pull.add_argument("--all-tasks", action="store_true", help="include tasks without annotations")

    pre = commands.add_parser("preannotate", help="upload predict() results as predictions for unlabelled tasks",
                              description="Run predict() on every task without an annotation (and without a "
                                          "prediction of this model yet) and upload the entities as predictions "
                                          "(model_version = model directory name, a score per span, task score = mean "
                                          "entity score, 1.0 when none). Sets the project's model version so annotators "
                                          "see them. --order-by-uncertainty also switches the project to Label Studio's "
                                          "'Uncertainty sampling': the labeling queue serves the lowest-scored task "
                                          "first; the order is printed.")
    _add_connection(pre)
    pre.add_argument("--model", required=True, help="exported model directory, e.g. models/tiny-asean")
    pre.add_argument("--order-by-uncertainty", action="store_true",
                     help="serve the least certain tasks first (project sampling = Uncertainty sampling)")

    backend = commands.add_parser("backend", help="run the ML backend (/health /setup /predict /webhook) on 127.0.0.1",
                                  description="Serve a Label Studio ML backend on --host:--port built on predict(); "
                                              "it listens on 127.0.0.1 only unless --host says otherwise, and has no "
                                              "authentication, so keep it there. Requests over 8 MiB are refused "
                                              "(413); errors are JSON {\"error\": ...}. /health answers while a "
                                              "prediction runs. /webhook refuses START_TRAINING (501, with the "
                                              "reason): retrain with pull + python -m training.run. Attach it with "
                                              "`connect --project TITLE --backend-url http://127.0.0.1:PORT`.")
    backend.add_argument("--model", required=True, help="exported model directory, e.g. models/tiny-asean")
    backend.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default: %(default)s, loopback only; Label Studio started by "
                              "`serve` reaches ML backends at 127.0.0.1 only)")
    backend.add_argument("--port", type=int, default=9090, help="port (default: %(default)s)")

    connect = commands.add_parser("connect", help="attach a running ML backend to the project",
                                  description="Attach the ML backend at --backend-url to the project (Label Studio "
                                              "checks its /health and /setup). Running it again updates it.")
    _add_connection(connect)
    connect.add_argument("--backend-url", required=True, help="e.g. http://127.0.0.1:9090")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from .server import serve

        return serve(port=args.port, data_dir=args.data_dir, timeout=args.timeout)
    if args.command == "backend":
        from .backend import serve_backend

        serve_backend(args.model, host=args.host, port=args.port)
        return 0

    from .client import Studio

    if args.command == "preannotate":  # load the model before touching the server
        from transformers.utils import logging as hf_logging

        from ..inference import ModelLoadError, load_model

        hf_logging.disable_progress_bar()  # errors stay one line on stderr

        try:
            model = load_model(args.model)
        except ModelLoadError as exc:
            raise StudioError(str(exc)) from None
    studio = Studio(args.url, args.token)
    studio.check()
    if args.command == "push":
        report = studio.push(args.project, args.config, args.tasks)
        state = "created" if report.created else ("labeling config updated" if report.config_updated else "up to date")
        print(f"project {args.project!r} (id {report.project_id}, {state}): {report.imported} task(s) imported, "
              f"{report.skipped} already there")
    elif args.command == "pull":
        report = studio.pull(args.project, args.config, args.out, args.all_tasks)
        print(f"wrote {report.path}: {report.tasks} annotated task(s), {report.spans} span(s) "
              f"(project {args.project!r}, id {report.project_id})")
        for line in report.diff.lines():
            print(f"  {line}")
        if report.warnings:
            print(f"  {len(report.warnings)} warning(s) while reading, first: {report.warnings[0]}")
    elif args.command == "preannotate":
        report = studio.preannotate(args.project, model, args.order_by_uncertainty)
        print(f"project {args.project!r} (id {report.project_id}): {len(report.predicted)} prediction(s) uploaded "
              f"as model version {report.model_version!r}, {report.skipped} task(s) skipped "
              "(annotated, or already predicted by this version)")
        if report.ordered:
            print("labeling order (Uncertainty sampling, lowest score first):")
        for task_id, score, count in report.predicted:
            print(f"  task {task_id}: score {score:.4f}, {count} entities")
    elif args.command == "connect":
        backend_id, created = studio.connect_backend(args.project, args.backend_url)
        print(f"ML backend {args.backend_url} {'connected to' if created else 'updated on'} project "
              f"{args.project!r} (backend id {backend_id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
