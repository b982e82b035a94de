"""The venvs and sam build install locks: every package pinned, with hashes, and up to date.

`make lock` writes the locks from the top-level files; these checks need no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "cancelflow"
# top-level file -> the lock made from it
LOCKS = {
    LAYER / "requirements.in": LAYER / "requirements.txt",
    ROOT / "requirements-dev.txt": ROOT / "requirements-dev.lock",
    ROOT / "requirements-sam.txt": ROOT / "requirements-sam.lock",
    ROOT / "requirements-checkov.txt": ROOT / "requirements-checkov.lock",
}


def _lines(path: Path) -> list[str]:
    """Logical lines: continuations joined, comments and blank lines dropped."""
    joined = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pins(path: Path) -> dict[str, tuple[Requirement, list[str]]]:
    """name -> (requirement, hashes) for each requirement line; options (-r, -c) skipped."""
    pins = {}
    for line in _lines(path):
        if line.startswith("-"):
            continue
        spec, *hashes = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        pins[canonicalize_name(requirement.name)] = (requirement, [h.strip() for h in hashes])
    return pins


def _version(requirement: Requirement) -> str | None:
    exact = [s.version for s in requirement.specifier if s.operator == "=="]
    return exact[0] if len(exact) == 1 and len(requirement.specifier) == 1 else None


@pytest.mark.parametrize("lock", sorted(LOCKS.values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_in_a_lock_is_pinned_to_one_version_with_its_hashes(lock: Path) -> None:
    pins = _pins(lock)
    assert pins, f"{lock} pins nothing"
    for name, (requirement, hashes) in pins.items():
        assert _version(requirement), f"{lock.name}: {name} is not pinned with =="
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{name} has no hash"


@pytest.mark.parametrize("top", sorted(LOCKS), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_lock_holds_what_its_top_level_file_asks_for(top: Path) -> None:
    locked = _pins(LOCKS[top])
    for name, (wanted, _) in _pins(top).items():
        assert name in locked, f"{name} is in {top.name} but not in its lock: run make lock"
        version = _version(locked[name][0])
        assert version and wanted.specifier.contains(version, prereleases=True), (
            f"{top.name} asks for {wanted}, the lock has {version}: run make lock"
        )


def test_the_dev_venv_runs_the_versions_the_layer_ships_to_lambda() -> None:
    dev = _pins(ROOT / "requirements-dev.lock")
    for name, (requirement, _) in _pins(LAYER / "requirements.txt").items():
        assert name in dev, f"{name} ships in the layer but the tests run without it"
        assert _version(dev[name][0]) == _version(requirement), name


def test_the_functions_need_nothing_unpinned() -> None:
    """sam build also reads each function's requirements.txt: anything there is pinned, hashed."""
    for path in sorted((ROOT / "functions").glob("*/requirements.txt")):
        for name, (requirement, hashes) in _pins(path).items():
            assert _version(requirement) and hashes, f"{path}: {name} unpinned or unhashed"
