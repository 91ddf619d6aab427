"""torch without the import of torch._dynamo where nothing is compiled.

torch marks some of its own methods as not for torch.compile (the optimizers' add_param_group, zero_grad and
state_dict, a dispatch mode's __torch_dispatch__, as the FLOP counter has) with a wrapper that imports
torch._dynamo on the method's first call: 1.3 s on this CPU, a fifth of a small table's whole `trainwell train`,
spent only to say "do not compile this". trainwell compiles the model at most (`--compile true`), never these
methods, which always run outside compiled code; so their wrappers are told the work is done, and call the
method itself. Where this torch wraps them otherwise, nothing changes.
"""
from __future__ import annotations

__all__ = ["skip_dynamo_marks"]


def skip_dynamo_marks(cls: type) -> None:
    """Mark the lazily wrapped methods of `cls` and its bases as wrapped already (torch._compile's wrapper
    caches the disabled method on the function as `__dynamo_disable`, and calls whatever it finds there)."""
    for klass in cls.__mro__:
        for attr in vars(klass).values():
            fn, code = getattr(attr, "__wrapped__", None), getattr(attr, "__code__", None)
            if fn is not None and code is not None and code.co_filename.endswith("_compile.py"):
                setattr(fn, "__dynamo_disable", fn)
