"""The audit log: every view of personal data and every change made in the console or the CLI.

An entry is added to the caller's session, so it is committed (or rolled back) together with the
change it records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import AuditEntry


async def record_audit(
    session: AsyncSession,
    *,
    user_id: int | None,
    action: str,
    target_type: str = "",
    target_id: str = "",
    detail: dict[str, Any] | None = None,
    ip: str = "",
) -> AuditEntry:
    """Add one audit entry to the session (`user_id` None means the command line or the system)."""
    entry = AuditEntry(
        user_id=user_id,
        action=action[:64],
        target_type=target_type[:32],
        target_id=target_id[:64],
        detail=detail or {},
        ip=ip[:64],
    )
    session.add(entry)
    return entry
