"""Run under torchrun by tests/distributed/test_ddp.py (never collected: no test_ prefix).

    worker.py step OUT            one optimizer step on the first global batch; rank 0 saves the weights
    worker.py kill OUT RANK STEP  a 3-epoch run whose RANK SIGKILLs itself at STEP on the first attempt
    worker.py whole OUT           the same run, uninterrupted
    worker.py poison OUT RANK STEP  RANK's forward pass gives NaN once, at STEP
"""
import os
import signal
import sys

import trainwell
from trainwell.callbacks import Callback

OPTIONS = dict(data="digits", model="mlp", hidden=[32], batch_size=64, precision="fp32", device="cpu", seed=3,
               augment="none", label_smoothing=0.0)


def one_step(out):
    from safetensors.torch import save_file

    from trainwell.distributed import world
    from trainwell.prepared import prepare
    from trainwell.trainer import Trainer

    prep = prepare(dict(OPTIONS, epochs=1), out=out, name="step")
    trainer = Trainer(prep.model, prep.splits.without_test(), prep.config, prep.precision, world=world())
    trainer.step_model.train()
    before = {f"init/{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    xb, yb = next(trainer.batches(0))
    trainer.train_step(xb, yb)
    sizes = world().gather(len(yb))
    if world().main:
        os.makedirs(out, exist_ok=True)
        after = {f"after/{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
        import torch

        save_file({k: v.contiguous() for k, v in {**before, **after, "local_batch": torch.tensor(sizes)}.items()},
                  os.path.join(out, f"step-{world().size}.safetensors"))
    world().barrier()  # nobody tears the group down while rank 0 is still writing


class KillAt(Callback):
    def __init__(self, rank, step):
        self.rank, self.step = rank, step

    def on_batch_end(self, trainer):
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first_attempt and trainer.world.rank == self.rank and trainer.state.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonAt(Callback):
    def __init__(self, rank, step):
        self.rank, self.step, self.done = rank, step, False

    def on_fit_start(self, trainer):
        def hook(module, inputs, output):
            if trainer.world.rank == self.rank and trainer.state.step == self.step and not self.done:
                self.done = True
                return output * float("nan")
        trainer.model.register_forward_hook(hook)


def run(out, callbacks=()):
    trainwell.train(dict(OPTIONS, epochs=3, checkpoint_every=10), out=out, quiet=True, callbacks=list(callbacks))


def killed(out, rank, step):
    run(out, [KillAt(int(rank), int(step))])


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    try:
        if mode == "step":
            one_step(out)
        elif mode == "kill":
            killed(out, *rest)
        elif mode == "poison":
            run(out, [PoisonAt(int(rest[0]), int(rest[1]))])
        else:
            run(out)
    finally:
        from trainwell.distributed import shutdown

        shutdown()
