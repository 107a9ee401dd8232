"""The configuration repository with the real git CLI: one commit per change, author and time kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from collectors.ssh.configrepo import ConfigRepo, ConfigRepoError
from tests.support.require import require_cmd


@pytest.fixture
def repo(tmp_path: Path) -> ConfigRepo:
    require_cmd("git")
    return ConfigRepo(tmp_path / "configs")


def test_versions_author_time_and_diff(repo: ConfigRepo) -> None:
    first = repo.save("core-1", "sysname core-1\n#\nreturn\n", 1_700_000_000)
    assert first and len(first) == 40
    assert repo.save("core-1", "sysname core-1\n#\nreturn\n", 1_700_000_500) is None  # unchanged: no version
    second = repo.save("core-1", "sysname core-1\n#\nip route-static 0.0.0.0 0 10.0.0.1\nreturn\n",
                       1_700_001_000, author="alice (manual) <alice@localhost>")  # fmt: skip
    assert second and second != first
    assert repo.save("core-2", "sysname core-2\n", 1_700_002_000)  # another device, same repository
    history = repo.history("core-1")
    assert [v.commit for v in history] == [second, first]
    assert history[0].timestamp == 1_700_001_000 and history[0].author == "alice (manual) <alice@localhost>"
    assert history[1].author == "govnet <govnet@localhost>" and history[1].subject == "core-1: first backup"
    diff = repo.diff("core-1")
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == ["+ip route-static 0.0.0.0 0 10.0.0.1"]
    assert "+sysname core-1" in repo.diff("core-1", back=5)  # no older version: the whole first file
    log = subprocess.run(["git", "-C", str(repo.path), "log", "--format=%H"], capture_output=True, text=True)
    assert len(log.stdout.split()) == 3


def test_bad_names_and_authors_are_refused(repo: ConfigRepo) -> None:
    for name in ("../x", "a/b", "", ".hidden", "x..y"):
        with pytest.raises(ValueError):
            repo.save(name, "x\n", 1.0)
    with pytest.raises(ValueError):
        repo.save("core-1", "x\n", 1.0, author="no email")
    assert repo.history("never-saved") == []


def test_failed_commit_leaves_no_half_version(repo: ConfigRepo) -> None:
    repo.save("core-1", "v1\n", 1_700_000_000)
    lock = repo.path / ".git" / "index.lock"  # another git process holding the index
    lock.write_text("")
    with pytest.raises(ConfigRepoError):
        repo.save("core-1", "v2\n", 1_700_000_100)
    lock.unlink()
    assert repo.current("core-1") == "v1\n"
    assert repo.save("core-1", "v2\n", 1_700_000_200)  # retried later: stored, not "unchanged"
    assert len(repo.history("core-1")) == 2
