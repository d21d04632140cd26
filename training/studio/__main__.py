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
  python -m training.studio agreement annotations/pulled_export.json   # several annotators

errors (wrong token, server down, labels missing from the project, invalid export) are
one line on stderr and exit code 1.
"""


def port_number(text: str) -> int:
    """A TCP port for argparse: 0 (any free port) to 65535; a larger number would wrap."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


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
    serve.add_argument("--port", type=port_number, default=8080, help="port (default: %(default)s)")
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
                                              "prediction runs. With --config it retrains: \"Start training\" in "
                                              "Label Studio (the START_TRAINING webhook), or every --retrain-every N "
                                              "annotation events, starts a training job in a separate process on the "
                                              "project's annotations (pulled with LABEL_STUDIO_URL / "
                                              "LABEL_STUDIO_API_KEY); the new model becomes a version in --models and "
                                              "is served only if its micro F1 on the project's held-out tasks is >= "
                                              "the current version's (see `versions`, `rollback`). Without --config, "
                                              "START_TRAINING is refused (501, with the reason). Attach it with "
                                              "`connect --project TITLE --backend-url http://127.0.0.1:PORT`.")
    backend.add_argument("--model", help="exported model directory, e.g. models/tiny-asean (with --config or --models: "
                                         "the first version of an empty store)")
    backend.add_argument("--config", help="run config to retrain with, e.g. configs/tiny.yaml (turns retraining on)")
    backend.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                         help="override one key of --config for every retraining run (repeatable)")
    backend.add_argument("--models", metavar="DIR", help="version store (default with --config: <--model>-versions)")
    backend.add_argument("--retrain-every", type=int, metavar="N",
                         help="also retrain after every N new or updated annotations of a project (default: off)")
    backend.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default: %(default)s, loopback only; Label Studio started by "
                              "`serve` reaches ML backends at 127.0.0.1 only)")
    backend.add_argument("--port", type=port_number, default=9090, help="port (default: %(default)s; 0: any free "
                                                                        "port)")

    versions = commands.add_parser("versions", help="list the model versions of a backend's version store",
                                   description="List the versions in --models (oldest first; * = served): when "
                                               "each was made, its test F1, its micro F1 on the held-out tasks, "
                                               "and the gate's decision with its reason.")
    versions.add_argument("--models", required=True, metavar="DIR", help="version store, e.g. models/tiny-asean-versions")
    versions.add_argument("--json", action="store_true", help="print the listing as JSON")

    rollback = commands.add_parser("rollback", help="serve an earlier (or any) version of a version store",
                                   description="Point --models DIR/current at --to, atomically; a running backend "
                                               "serves it from its next request on.")
    rollback.add_argument("--models", required=True, metavar="DIR", help="version store")
    rollback.add_argument("--to", required=True, metavar="VERSION", help="e.g. v0001")

    connect = commands.add_parser("connect", help="attach a running ML backend to the project",
                                  description="Attach the ML backend at --backend-url to the project (Label Studio "
                                              "checks its /health and /setup). Running it again updates it.")
    _add_connection(connect)
    connect.add_argument("--backend-url", required=True, help="e.g. http://127.0.0.1:9090")

    agree = commands.add_parser("agreement", help="strict span agreement between annotators of an export (offline)",
                                description="Pairwise F1 between the annotators (completed_by) of a full Label Studio "
                                            "JSON export: exact start, end and label; per pair, per entity type and "
                                            "overall (micro over pairs), as Prodigy's metric.iaa.span. Only tasks with "
                                            "2+ annotators count; cancelled annotations and reviews written back by "
                                            "`review` are left out. "
                                            "Every annotation is validated like training reads it. Then the tasks "
                                            "with most disagreement, spans side by side, each disagreement classed "
                                            "boundary, type, boundary+type or missing.")
    agree.add_argument("export", help="full Label Studio JSON export (e.g. from pull)")
    agree.add_argument("--labeling-config", default=DEFAULT_CONFIG,
                       help="labeling config to validate against (default: %(default)s)")
    agree.add_argument("--top", type=int, default=5, help="tasks with most disagreement to show (default: %(default)s)")
    agree.add_argument("--json", metavar="OUT", help="also write every figure and disputed task as JSON")

    rev = commands.add_parser("review", help="send disputed tasks to a review project; write reviews back",
                              description="Idempotent. (1) Every task of --review-project the reviewer annotated "
                                          "is written back to its task in --project as a review: a ground-truth "
                                          "annotation (last_action fixed_and_accepted) that wins in `pull`: that is "
                                          "what trains. (2) Tasks of --project "
                                          "whose annotators' agreement (strict span F1) is below --min-f1 and that "
                                          "have no review yet go to --review-project, each annotator's spans "
                                          "as one prediction (model version = the annotator), for a reviewer to "
                                          "annotate the accepted version.")
    _add_connection(rev)
    rev.add_argument("--review-project", required=True, metavar="TITLE", help="review project title")
    rev.add_argument("--min-f1", type=float, default=1.0,
                     help="review tasks whose agreement F1 is below this (default: %(default)s: any disagreement)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from .server import serve

        return serve(port=args.port, data_dir=args.data_dir, timeout=args.timeout)
    if args.command == "backend":
        from .backend import serve_backend

        if args.model is None and args.models is None:
            raise StudioError("give --model (an exported model directory) or --models (a version store)")
        serve_backend(args.model, host=args.host, port=args.port, config=args.config, overrides=args.overrides,
                      store_dir=args.models, retrain_every=args.retrain_every)
        return 0
    if args.command in ("versions", "rollback"):
        return _versions(args)
    if args.command == "agreement":
        return _agreement(args)

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
        if not report.predicted:
            print("no new tasks to pre-annotate")
        elif report.ordered:
            print("labeling order (Uncertainty sampling, lowest score first):")
        for task_id, score, count in report.predicted:
            print(f"  task {task_id}: score {score:.4f}, {count} entities")
    elif args.command == "connect":
        backend_id, created = studio.connect_backend(args.project, args.backend_url)
        print(f"ML backend {args.backend_url} {'connected to' if created else 'updated on'} project "
              f"{args.project!r} (backend id {backend_id})")
    elif args.command == "review":
        from .review import review

        report = review(studio, args.project, args.review_project, args.min_f1)
        overall = report.agreement.overall
        print(f"project {args.project!r} (id {report.project_id}): agreement F1 {overall.f1:.3f} over "
              f"{len(report.agreement.tasks)} task(s) with 2+ annotators; {report.disputed} below {args.min_f1:g}")
        if report.review_project_id:
            state = "created" if report.created else "exists"
            print(f"review project {args.review_project!r} (id {report.review_project_id}, {state}): "
                  f"{report.added} task(s) added, {report.already} already there, {report.settled} already "
                  "reviewed")
        print(f"reviews written back as ground truth: {report.written} new, {report.updated} updated, "
              f"{report.unchanged} unchanged; train on `pull --project {args.project!r}`")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..common.atomic import atomic_file
    from ..data.annotators import read_annotators
    from ..data.validation import AnnotationError
    from ..text.schema import LabelConfigError, read_labeling_config
    from .agreement import agreement

    try:
        schema = read_labeling_config(args.labeling_config)
        result = agreement(read_annotators(args.export, schema), schema.labels)
    except LabelConfigError as exc:
        raise StudioError(str(exc)) from None
    except AnnotationError as exc:
        raise StudioError(f"{len(exc.problems)} annotation problem(s); first: {exc.problems[0]}") from None
    print(result.report(args.top, args.export))
    if args.json:
        with atomic_file(Path(args.json)) as staging:
            staging.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _versions(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .versions import VersionStore, format_listing

    store = VersionStore(args.models)
    if not Path(args.models).is_dir() or not store.names():
        raise StudioError(f"{args.models} holds no model version (a backend started with --config or --models "
                          "makes them)")
    if args.command == "rollback":
        before = store.rollback(args.to)
        print(f"{args.models}: current {before} -> {args.to} (a running backend serves it from its next request)")
        return 0
    rows = store.listing()
    if args.json:
        print(json.dumps({"versions": rows, "held_out": store.holdouts()}, ensure_ascii=False, indent=1))
        return 0
    print(f"{args.models}: {len(rows)} version(s), * = current")
    print("\n".join(format_listing(rows)))
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
