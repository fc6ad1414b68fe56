"""Whose a lead is: the user a payload names (by email or external id), the next one the hook's routing gives,
or, for an owner no user matches, the unknown-owner policy (reject, fallback user, or drop)."""

from __future__ import annotations

from typing import Any

from bonzo_bulk.sandbox.prospects import label, scalar
from bonzo_bulk.sandbox.rows import HookRow, UserRow
from bonzo_bulk.sandbox.state import SandboxState


class DropLead(Exception):
    """The lead is accepted (200) and never created: an unknown lo_email under the ``drop`` policy."""


def owner_by_email(state: SandboxState, raw: Any, field: str, errors: dict[str, list[str]]) -> UserRow | None:
    """The user with this email (case-insensitive), else the unknown-owner policy."""
    email = scalar(raw)
    return known_or_policy(state, state.users_by_email.get(email.lower()) if email else None, email, field, errors)


def known_or_policy(
    state: SandboxState, user: UserRow | None, key: str | None, field: str, errors: dict[str, list[str]]
) -> UserRow | None:
    """A found (non-superuser) owner, else the unknown-lo_email policy: reject (a field error), fallback or drop."""
    if user is not None and not user.is_superuser:
        return user
    policy = state.unknown_lo_email
    if policy == "drop":
        raise DropLead
    if policy == "fallback" and state.fallback_user_id in state.users:
        return state.users[state.fallback_user_id]
    if key is None:
        errors.setdefault(field, []).append(f"The {label(field)} field is required.")
    else:
        reason = " and no fallback user is set" if policy == "fallback" else ""
        errors.setdefault(field, []).append(f"The selected {label(field)} is invalid (no Bonzo user{reason}).")
    return None


def owner_by_routing(state: SandboxState, hook: HookRow, errors: dict[str, list[str]]) -> UserRow | None:
    """The owner the hook's routing gives the next lead: a fixed user, or the next in its round robin."""
    routing = hook.routing
    if routing is None:
        errors["routing"] = [
            f"This {hook.type} hook has no routing policy (seed it with routing: fixed or round_robin)."
        ]
        return None
    user: UserRow | None
    if routing.get("kind") == "fixed":
        user = state.users.get(int(routing.get("user_id") or 0))
    else:
        listed = [state.users[u] for u in routing.get("user_ids") or [] if u in state.users]
        pool = listed or [u for _, u in sorted(state.users.items()) if not u.is_superuser]
        handed_out = state.round_robin.get(hook.hash, 0)
        user = pool[handed_out % len(pool)] if pool else None
        state.round_robin[hook.hash] = handed_out + 1
    if user is None or user.is_superuser:
        errors["routing"] = ["The hook's routing names no seeded user."]
        return None
    return user
