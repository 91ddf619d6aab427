"""`trainwell search`: trials are trainwell runs (prepare + fit + keep) driven by an Optuna study; only the
chosen configuration ever sees the test set.

    OUT/STUDY/
      search.yaml      the base options, the space and the sampler, for people (the study holds the same)
      study.db         the embedded storage: SQLite in WAL mode with a long busy timeout, shared by the
                       --jobs worker processes (--storage postgresql://... instead joins machines)
      trials/0007/     one trainwell run directory per trial; a retried trial resumes its directory
      best             -> trials/0007 once the chosen trial is tested (or final/ with --final)
      study.json       every trial and the result, written at the end

A worker that dies stops its heartbeat; any other worker (or a rerun of the command) marks the trial failed
after the grace period and queues it again with the same values, and the retry resumes from the dead
trial's last checkpoint. A study ends with exactly --trials finished (complete or pruned) trials.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterator

from trainwell.errors import Interrupted, UserError
from trainwell.tune.storage import MAX_RETRY, Study
from trainwell.tune.trial import run_trial

def work(study: Study, worker: int = 0, deadline: float | None = None,
         on_trial: Callable[[Any], None] | None = None) -> None:
    """Run trials until the study has `trials` finished ones (or the deadline passes). Safe to run in
    several processes and on several machines at once."""
    import optuna
    from optuna.trial import TrialState

    ost = study.optuna_study(worker)
    failures = 0
    while True:
        optuna.storages.fail_stale_trials(ost)  # a dead worker's trial: failed and queued again
        n = counts(ost)
        if study.trials is not None and n["done"] >= study.trials:
            return
        if deadline is not None and time.time() >= deadline:
            return
        if study.trials is not None and n["done"] + n["running"] >= study.trials and not n["waiting"]:
            time.sleep(min(study.heartbeat, 2))  # the last trials run elsewhere; stay in case one of them dies
            continue
        if study.sampler == "grid" and not n["waiting"]:
            if n["running"]:
                time.sleep(min(study.heartbeat, 2))
                continue
            return  # the grid is done (points that failed for good stay failed)
        trial = ost.ask()
        if _surplus(ost, trial, study.trials):
            ost.tell(trial, state=TrialState.FAIL)  # asked after the last needed one: it never ran
            continue
        with _heartbeat(ost._storage, trial._trial_id, study.heartbeat):
            try:
                state, value = run_trial(study, trial)
            except (Interrupted, KeyboardInterrupt):
                ost.tell(trial, state=TrialState.FAIL)
                _requeue(ost, trial)  # a rerun resumes it from its last checkpoint
                raise Interrupted(f"interrupted; trial {trial.number} was saved and queued again: rerun the same "
                                  "trainwell search command to resume the study") from None
            except UserError as e:
                trial.set_user_attr("error", str(e))
                ost.tell(trial, state=TrialState.FAIL)
                failures += 1
                if failures >= 3:
                    raise UserError(f"three trials in a row could not start; the last: {e}") from None
                continue
            except BaseException:
                ost.tell(trial, state=TrialState.FAIL)
                raise
        failures = 0
        if state == TrialState.COMPLETE:
            ost.tell(trial, value)
        else:
            ost.tell(trial, state=state)
        if on_trial is not None:
            on_trial(ost.trials[trial.number])


def counts(ost: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = ost.get_trials(deepcopy=False)
    return {"done": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
            "waiting": sum(t.state == TrialState.WAITING for t in trials)}


def _surplus(ost: Any, trial: Any, n: int | None) -> bool:
    """True when `n` trials that were asked before this one are finished, running or queued: several
    workers asking at once then settle on exactly n by trial number, whoever asked first."""
    from optuna.trial import TrialState

    if n is None:
        return False
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    ahead = [t for t in ost.get_trials(deepcopy=False) if t.number < trial.number and t.state in live]
    return len(ahead) >= n


def _requeue(ost: Any, trial: Any) -> None:
    import optuna

    frozen = ost._storage.get_trial(trial._trial_id)
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(ost, frozen)


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int, interval: int) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried; the grace period is 3 beats
                storage.record_heartbeat(trial_id)

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, name="trainwell-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- one trial: a trainwell run that reports each epoch to the pruner --------------------------------------


