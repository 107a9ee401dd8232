"""Configuration versions in a git repository per deployment (git CLI with argument lists, never a shell)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_AUTHOR = re.compile(r"^(?P<name>[^<>\n]{1,64}) <(?P<email>[^<>\s]{1,128})>$")
DEFAULT_AUTHOR = "govnet <govnet@localhost>"


class ConfigRepoError(RuntimeError):
    """A git command failed (message carries git's short error, never configuration text)."""


@dataclass(frozen=True)
class Version:
    """One stored configuration version of a device."""

    commit: str
    timestamp: float
    author: str
    subject: str


class ConfigRepo:
    """One file per device (`<device>.cfg`); a commit only when the normalised text changed."""

    def __init__(self, path: Path, git: str = "git") -> None:
        self.path = Path(path)
        self._git = git
        self._lock = threading.Lock()  # git's index lock does not queue; serialise writers here

    def _env(self, now: float | None = None, author: str = DEFAULT_AUTHOR) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",  # no system/user git config (hooks, pagers, diff drivers)
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
        }
        if now is not None:
            m = _AUTHOR.match(author)
            if m is None:
                raise ValueError("author must look like 'Name <email>'")
            date = f"@{int(now)} +0000"
            env |= {
                "GIT_AUTHOR_NAME": m["name"],
                "GIT_AUTHOR_EMAIL": m["email"],
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_NAME": "govnet",
                "GIT_COMMITTER_EMAIL": "govnet@localhost",
                "GIT_COMMITTER_DATE": date,
            }
        return env

    def _run(self, *args: str, now: float | None = None, author: str = DEFAULT_AUTHOR) -> str:
        proc = subprocess.run(
            [self._git, "-C", str(self.path), *args],
            env=self._env(now, author),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["no output"])[0][:200]
            raise ConfigRepoError(f"git {args[0]} failed: {first}")
        return proc.stdout

    def ensure(self) -> None:
        """Create the repository (idempotent)."""
        with self._lock:
            if (self.path / ".git").is_dir():
                return
            self.path.mkdir(parents=True, exist_ok=True)
            self._run("init", "-q", "-b", "main")

    @staticmethod
    def file_of(device: str) -> str:
        """The file holding a device's configuration (device names are validated: no paths)."""
        if not _NAME.match(device) or ".." in device:
            raise ValueError("invalid device name")
        return f"{device}.cfg"

    def current(self, device: str) -> str | None:
        """The newest stored text of a device, or None."""
        path = self.path / self.file_of(device)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def save(
        self, device: str, text: str, now: float, author: str = DEFAULT_AUTHOR, subject: str | None = None
    ) -> str | None:
        """Store `text`; the new commit id, or None when it equals the stored version."""
        self.ensure()
        name = self.file_of(device)
        with self._lock:
            path = self.path / name
            existed = path.is_file()
            if existed and path.read_text(encoding="utf-8") == text:
                return None
            old = path.read_text(encoding="utf-8") if existed else None
            self._write(path, text)
            subject = subject or f"{device}: {'configuration changed' if existed else 'first backup'}"
            try:
                self._run("add", "--", name)
                self._run("commit", "-q", "--no-verify", "-m", subject, "--", name, now=now, author=author)
            except ConfigRepoError:
                # Put the working tree back, or the next backup would see "unchanged" and never commit.
                if old is None:
                    path.unlink(missing_ok=True)
                    self._run("rm", "-q", "--cached", "--ignore-unmatch", "--", name)
                else:
                    self._write(path, old)
                    self._run("add", "--", name)
                raise
            return self._run("rev-parse", "HEAD").strip()

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def history(self, device: str) -> list[Version]:
        """Versions of a device, newest first."""
        if not (self.path / ".git").is_dir():
            return []
        try:
            out = self._run("log", "--format=%H%x1f%at%x1f%an <%ae>%x1f%s", "--", self.file_of(device))
        except ConfigRepoError:
            return []  # no commit yet
        versions = []
        for line in out.splitlines():
            commit, ts, author, subject = line.split("\x1f", 3)
            versions.append(Version(commit, float(ts), author, subject))
        return versions

    def diff(self, device: str, back: int = 1) -> str:
        """Unified diff from `back` versions ago to the newest (the whole file when there is no older one)."""
        versions = self.history(device)
        name = self.file_of(device)
        if not versions:
            return ""
        base = ["--no-color", "--no-ext-diff", "--no-textconv"]
        if len(versions) > back:
            return self._run("diff", *base, versions[back].commit, versions[0].commit, "--", name)
        return self._run("show", *base, "--format=", versions[-1].commit, "--", name)
