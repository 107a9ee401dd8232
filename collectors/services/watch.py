"""The defacement watch: accepted baselines versioned in git, and each page judged against its baseline."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field

from collectors.services.content import Page, allowed, forbidden_found, text_diff
from collectors.ssh.configrepo import ConfigRepo, Version
from inventory.services import ContentWatch

FIRST_CHECK_AUTHOR = "govnet <govnet@localhost>"


class BaselineRepo(ConfigRepo):
    """One `<service>.json` per watched page in a git repository: who accepted which baseline, when."""

    @staticmethod
    def file_of(device: str) -> str:
        """The file holding a service's baseline (service names are validated: no paths)."""
        return ConfigRepo.file_of(device).removesuffix(".cfg") + ".json"

    def load(self, service: str) -> Page | None:
        """The accepted baseline of a service, or None."""
        text = self.current(service)
        return Page.from_json(json.loads(text)) if text else None

    def accept(self, service: str, page: Page, now: float, author: str, reason: str) -> str | None:
        """Store `page` as the service's baseline (a commit by `author`); None when unchanged."""
        text = json.dumps(page.to_json(), ensure_ascii=False, sort_keys=True, indent=1) + "\n"
        return self.save(service, text, now, author, f"{service}: {reason}"[:200])

    def versions(self, service: str) -> list[Version]:
        """Accepted baselines of a service, newest first."""
        return self.history(service)


@dataclass
class Verdict:
    """How the last page of a service compares with its accepted baseline."""

    changed: bool = False
    changed_since: float | None = None  # when the current (changed) text was first seen
    diff: list[str] = field(default_factory=list)
    new_hosts: list[str] = field(default_factory=list)  # external script/iframe hosts not allowed or accepted
    hidden_links: list[str] = field(default_factory=list)  # new external hosts linked from hidden elements
    forbidden: list[str] = field(default_factory=list)
    checked_at: float | None = None


class PageWatch:
    """The watch of one service: its baseline, the last page seen and the verdict (time passed in)."""

    def __init__(self, service: str, cfg: ContentWatch, repo: BaselineRepo) -> None:
        self.service, self.cfg, self.repo = service, cfg, repo
        self.baseline: Page | None = repo.load(service)
        self.last: Page | None = None
        self.verdict = Verdict()
        self._digest: str | None = None  # of the current changed text
        self._lock = threading.Lock()

    def observe(self, page: Page, now: float) -> Verdict:
        """Judge a fresh page; the first page of a service becomes its baseline (accepted by govnet)."""
        with self._lock:
            if self.baseline is None:
                self.repo.accept(self.service, page, now, FIRST_CHECK_AUTHOR, "first check: baseline")
                self.baseline = page
            self.last = page
            base = self.baseline
            v = Verdict(checked_at=now)
            v.changed = page.text != base.text
            if v.changed:
                digest = hashlib.sha256(page.text.encode()).hexdigest()
                same = digest == self._digest and self.verdict.changed_since is not None
                v.changed_since = self.verdict.changed_since if same else now
                self._digest = digest
                v.diff = text_diff(base.text, page.text)
            else:
                self._digest = None
            known = base.external_active_hosts()
            v.new_hosts = sorted(
                h
                for h in page.external_active_hosts()
                if h not in known and not allowed(h, self.cfg.allow_domains)
            )
            hidden_known = base.hidden_link_hosts()
            v.hidden_links = sorted(
                h
                for h in page.hidden_link_hosts()
                if h not in hidden_known and not allowed(h, self.cfg.allow_domains)
            )
            v.forbidden = forbidden_found(page, self.cfg)
            self.verdict = v
            return v

    def accept(self, author: str, now: float) -> str | None:
        """Accept the last page seen as the new baseline (`author` like 'Name <email>'); the commit id."""
        with self._lock:
            page = self.last
            if page is None:
                raise ValueError("no page seen yet")
            commit = self.repo.accept(self.service, page, now, author, "baseline accepted")
            self.baseline = page
            self.verdict = Verdict(checked_at=now, forbidden=self.verdict.forbidden,
                                   new_hosts=[])  # fmt: skip
            self._digest = None
            return commit
