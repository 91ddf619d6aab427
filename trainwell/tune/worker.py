"""One search worker process: `python -m trainwell.tune.worker STUDY_DIR NAME INDEX HEARTBEAT THREADS DEADLINE`,
started by `trainwell search --jobs J`. The storage URL comes in TRAINWELL_STORAGE (not on the command line,
where other users of the machine could read a password); the study's options come from the storage itself."""
from __future__ import annotations

import os
import sys

from trainwell.errors import Interrupted, UserError
from trainwell.tune.space import Space
from trainwell.tune.storage import Study, from_record, quiet_optuna
from trainwell.tune.study import work


def main(argv: list[str]) -> int:
    import optuna  # here, like every import of optuna: it takes a second

    study_dir, name, index, heartbeat, threads, deadline = argv
    url = os.environ["TRAINWELL_STORAGE"]
    quiet_optuna()
    probe = Study(name, study_dir, url, {}, Space([]), "random", None, heartbeat=int(heartbeat))
    record = optuna.load_study(study_name=name, storage=probe.storage()).user_attrs
    study = from_record(name, study_dir, url, record, heartbeat=int(heartbeat))
    study.threads = int(threads)
    study.tensorboard = os.environ.get("TRAINWELL_TENSORBOARD") or None
    try:
        work(study, int(index), float(deadline) or None)
    except UserError as e:
        print(f"trainwell: error: worker {index}: {e}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt):
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
