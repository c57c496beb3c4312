"""One redaction pass for everything driftloop writes about its config: credentials never reach a file or a log.

A URL's password (``postgresql://user:pw@host``), a bare token in its user part (``https://TOKEN@host``) and
secret-looking query parameters (``?password=...``, ``token=``, ``key=``) become ``***``. The config in memory
keeps the real values; :meth:`DriftloopConfig.resolved` (``config.yaml``, ``show-config``, MLflow params, the model
folder's ``training_config.json``) goes through here.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*)(?P<password>:[^/@\s]*)?@")
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][\w.\-]*?(?:password|passwd|pwd|pass|token|secret|key|signature|sig)=)"
    r"(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with every URL credential masked."""

    def userinfo(m: re.Match[str]) -> str:
        if m["password"]:
            return f"{m['scheme']}{m['user']}:{MASK}@"
        return f"{m['scheme']}{MASK}@" if m["user"] else m.group(0)

    masked = _USERINFO.sub(userinfo, text)
    return _SECRET_PARAM.sub(lambda m: f"{m['name']}{MASK}" if m["value"] else m.group(0), masked)


def redact(value: Any) -> Any:
    """A copy of JSON-like data with every string passed through :func:`redact_text`."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
