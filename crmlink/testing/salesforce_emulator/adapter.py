"""Test-only ``requests`` plumbing that points simple-salesforce at the emulator.

simple-salesforce builds every URL as ``https://...`` and its login URLs as
``https://{domain}.salesforce.com/...``. ``rewrite_session(emu)`` returns a
``requests.Session`` whose adapter rewrites

* ``https://127.0.0.1:PORT``         -> the emulator (``http://`` in plain mode), and
* ``https://<anything>.salesforce.com`` -> the emulator (SOAP/OAuth login hosts),

so ``Salesforce(..., session=rewrite_session(emu))`` works in both plain and TLS mode.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

_SF_HOST = re.compile(r"^https://[^/]*\.salesforce\.com(?::\d+)?")


class RewriteAdapter(HTTPAdapter):
    """Rewrites URL prefixes before sending; optionally applies a default timeout."""

    def __init__(self, mapping: dict[str, str], target: str,
                 timeout: float | tuple[float, float] | None = None, **kw: Any) -> None:
        self.mapping = mapping
        self.target = target
        self.default_timeout = timeout
        super().__init__(**kw)

    def rewrite(self, url: str) -> str:
        for src, dst in self.mapping.items():
            if url.startswith(src):
                return dst + url[len(src):]
        match = _SF_HOST.match(url)
        if match:
            return self.target + url[match.end():]
        return url

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        request.url = self.rewrite(request.url or "")
        if kw.get("timeout") is None and self.default_timeout is not None:
            kw["timeout"] = self.default_timeout
        return super().send(request, **kw)


def rewrite_session(emu: SalesforceEmulator,
                    timeout: float | tuple[float, float] | None = None,
                    max_retries: Any = 0) -> requests.Session:
    """A session for simple-salesforce that reaches ``emu`` (started) over http or https."""
    base = emu.instance_url
    hostport = base.split("://", 1)[1]
    session = requests.Session()
    session.trust_env = False  # env CA bundles/proxies must not override verify or hijack 127.0.0.1
    if emu.ca_path:
        session.verify = emu.ca_path
    adapter = RewriteAdapter({f"https://{hostport}": base}, base, timeout=timeout,
                             max_retries=max_retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
