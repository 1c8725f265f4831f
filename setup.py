"""Build hook: a wheel of atlaskit carries the book's chapters.

All metadata is in pyproject.toml; this file only adds one step to ``build_py``. The chapters
stay where the book needs them, in ``notebooks/NN_name.py`` at the repository root (outside the
package), and are copied into ``atlaskit/_chapters/`` of the build folder, so that a wheel (and an
sdist, see MANIFEST.in) holds them and an installed atlaskit finds them (atlaskit/_paths.py).
An editable install (``make install``) copies nothing: it reads ``notebooks/`` in place.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CHAPTER_PATTERN = "[0-9][0-9]_*.py"


class build_py_with_chapters(build_py):
    """``build_py`` that also copies ``notebooks/NN_name.py`` to ``<build>/atlaskit/_chapters/``."""

    def _chapter_targets(self) -> list[tuple[Path, Path]]:
        target = Path(self.build_lib) / "atlaskit" / "_chapters"
        return [(source, target / source.name) for source in sorted((HERE / "notebooks").glob(CHAPTER_PATTERN))]

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        pairs = self._chapter_targets()
        if not pairs:  # a wheel without chapters is the bug this hook exists for
            raise SystemExit(f"setup.py: no chapters ({CHAPTER_PATTERN}) in {HERE / 'notebooks'}")
        shutil.rmtree(pairs[0][1].parent, ignore_errors=True)  # no stale chapter from an earlier build
        for source, target in pairs:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

    def get_outputs(self, *args, **kwargs) -> list[str]:
        extra = [] if getattr(self, "editable_mode", False) else [str(t) for _, t in self._chapter_targets()]
        return list(super().get_outputs(*args, **kwargs)) + extra


setup(cmdclass={"build_py": build_py_with_chapters})
