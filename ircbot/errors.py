"""Errors a handler may raise to refuse a command with a short, user-facing reason."""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(Exception):
    """Refuse the command: the message is replied as is and the transaction rolled back."""
