"""`python -m benchmarks.kill_training`: kill -9 `python -m training.run` at random
moments and check, after every kill, that `models/<run>` is a loadable model (the old
one or the new one, never neither); at the end, that the next run removes what the
killed runs left behind.

Half the kills land at a uniformly random moment of a whole run, half inside the
export (once its temporary directory has appeared), where the swap happens.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import BUILD, ROOT, machine
from training import ModelLoadError, load_model
from training.common.tables import Table

RUN = "kill-test"


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "training.run", "--config", str(ROOT / "configs" / "tiny.yaml"),
            "--set", f"run_name={RUN}", "--set", f"output.dir={out / 'models'}",
            "--set", f"output.checkpoints={out / 'ckpt'}", "--set", "model.tiny.epochs=4"]


def leftovers(out: Path) -> list[Path]:
    return list((out / "models").glob(f".{RUN}.tmp-*"))


def loadable(target: Path) -> bool:
    try:
        model = load_model(target, precision="fp32")
    except ModelLoadError:
        return False
    return isinstance(model.predict("Thủ tướng Phạm Minh Chính tới Hà Nội."), list)


def kill_once(out: Path, moment: float | None, rng: random.Random) -> str:
    """Start a run and kill it at `moment` seconds, or inside the export when None."""
    process = subprocess.Popen(command(out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    started, phase = time.perf_counter(), "training"
    while process.poll() is None:
        elapsed = time.perf_counter() - started
        if moment is not None and elapsed >= moment:
            break
        if moment is None and leftovers(out):
            time.sleep(rng.uniform(0, 0.4))
            phase = "export"
            break
        time.sleep(0.01)
    if process.poll() is not None:
        return "finished"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return phase


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kill_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(BUILD / "kill_training"))
    args = parser.parse_args(argv)
    out, rng = Path(args.out), random.Random(args.seed)
    target = out / "models" / RUN
    print(machine(), flush=True)
    started = time.perf_counter()
    subprocess.run(command(out), cwd=ROOT, check=True, capture_output=True)
    full = time.perf_counter() - started
    print(f"a whole run takes {full:.1f} s; killing {args.kills} runs", flush=True)
    rows, failures = [], 0
    for index in range(args.kills):
        moment = rng.uniform(0, full) if index % 2 == 0 else None
        phase = kill_once(out, moment, rng)
        ok = loadable(target)
        failures += not ok
        rows.append([index, "random" if moment is not None else "in export", phase, len(leftovers(out)),
                     "yes" if ok else "NO"])
        print(f"kill {index + 1}/{args.kills}: {phase}, loadable: {ok}", flush=True)
    subprocess.run(command(out), cwd=ROOT, check=True, capture_output=True)
    left = leftovers(out)
    print(Table(["#", "moment", "killed during", "temporaries beside the model", "model loadable"], rows,
                f"kill -9 of python -m training.run ({args.kills} kills)"))
    print(f"after one more complete run: {len(left)} temporaries left; model loadable: {loadable(target)}")
    return 1 if failures or left else 0


if __name__ == "__main__":
    sys.exit(main())
