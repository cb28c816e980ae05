"""Finding Chromium for the browser tests: without it they fail with a message naming the package, never skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.explorer.browser import MissingChromium, find_chromium


def test_without_chromium_the_browser_tests_fail_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(MissingChromium) as caught:
        find_chromium(candidates=[str(tmp_path / "chromium")], env={"PATH": str(tmp_path)})
    assert "Debian's 'chromium' package" in str(caught.value)
    assert "apt-get install chromium" in str(caught.value)
    with pytest.raises(MissingChromium, match="MEDCHAIN_CHROMIUM"):
        find_chromium(env={"PATH": str(tmp_path), "MEDCHAIN_CHROMIUM": str(tmp_path / "nope")})
