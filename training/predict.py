"""`python -m training.predict --model DIR FILE...`: entities as JSON lines.

The command lives in `training.inference.command` (see `--help`). This module only runs
it: importing it would bind the name `training.predict` to this module, shadowing the
function that `from training import predict` promises, so an import is refused.
(`__mp_main__` is this file re-run by multiprocessing's spawn in a `--workers` process,
which must neither fail nor start the command again.)
"""

import sys

if __name__ == "__main__":
    from training.inference.command import main

    sys.exit(main())
elif __name__ != "__mp_main__":
    raise ImportError(
        "training.predict is the command line (python -m training.predict); in code, "
        "`from training import predict` is the function and training.inference.command.main the command"
    )
