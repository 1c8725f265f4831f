"""atomic_write: the final path holds either the old content or the complete new one."""
from __future__ import annotations

import numpy as np
import pytest

from atlaskit._atomic import atomic_write


def test_success_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.npy"
    target.write_bytes(b"old")
    with atomic_write(target) as fh:
        np.save(fh, np.arange(5), allow_pickle=False)
    assert np.array_equal(np.load(target, allow_pickle=False), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_interruption_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "export.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(error):
        with atomic_write(target, "w", encoding="utf-8") as fh:
            fh.write("half of the new")
            raise error("disk full or Ctrl-C")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["export.json"]


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass
