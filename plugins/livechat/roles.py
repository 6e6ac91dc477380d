"""The team's roles, ordered, so that "may this person do that" is one comparison.

Someone who says ``!newhelper`` becomes a *trainee*; helpers vouch for trainees; coordinators
promote them. Each role includes the ones below it (a coordinator is also a helper), which is
why they are an ordered :class:`~enum.IntEnum` and a command declares the least role it needs::

    >>> from ircbot_plugins.livechat.roles import Role
    >>> Role.NONE < Role.TRAINEE < Role.HELPER < Role.COORDINATOR
    True
    >>> Role.COORDINATOR >= Role.HELPER
    True
    >>> Role.TRAINEE >= Role.HELPER
    False

Roles are stored as their integer value, so the ordering also holds in SQL
(``WHERE role >= 2`` is "helpers and coordinators")::

    >>> int(Role.HELPER)
    2
    >>> max(Role.TRAINEE, Role.COORDINATOR).label
    'coordinator'
    >>> Role.parse("Helper")
    <Role.HELPER: 2>
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Role", "role_name"]


class Role(IntEnum):
    """What a person may do in the trainee process; a higher role may do all a lower one may."""

    NONE = 0
    TRAINEE = 1
    HELPER = 2
    COORDINATOR = 3

    @property
    def label(self) -> str:
        """The word used in replies: ``helper``, ``coordinator``..."""
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> Role:
        """The role named ``word`` (any case); ValueError if there is none."""
        try:
            return cls[word.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {word!r} (roles: {names})") from None


def role_name(role: object) -> str:
    """How the dispatcher names a required role in a refusal ("needs helper")."""
    return role.label if isinstance(role, Role) else str(role)
