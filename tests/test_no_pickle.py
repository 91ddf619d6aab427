"""The suite-wide guard in conftest.py fails the run if anything is unpickled; prove the guard works."""
import collections
import pickle

from tests.conftest import UNPICKLED


def test_the_audit_hook_sees_unpickling():
    before = len(UNPICKLED)
    pickle.loads(pickle.dumps(collections.OrderedDict(a=1)))
    assert len(UNPICKLED) > before and "OrderedDict" in UNPICKLED[-1]
    del UNPICKLED[before:]  # this one was deliberate


def test_object_arrays_in_npz_are_refused_not_unpickled(tmp_path):
    import numpy as np
    import pytest

    from trainwell.data import load_source
    from trainwell.errors import UserError

    np.savez(tmp_path / "o.npz", x=np.array([collections.OrderedDict()] * 4, dtype=object), y=np.arange(4))
    before = len(UNPICKLED)
    with pytest.raises(UserError, match="never unpickled"):
        load_source(str(tmp_path / "o.npz"))
    assert len(UNPICKLED) == before
