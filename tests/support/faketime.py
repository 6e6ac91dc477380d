"""Move a running process's clocks with libfaketime, and read what CPU it spent.

Why: a suspended host, a paused VM or an NTP step makes both of the bot's clocks jump while
it runs, and the only honest test of what it does then is a real process whose clocks really
jump. Debian's ``libfaketime`` does that without a restart: the process is started with the
library preloaded, ``FAKETIME_TIMESTAMP_FILE`` naming a file that holds an offset (``+0``),
and ``FAKETIME_NO_CACHE=1`` so that every clock read looks at the file again; writing
``+360h`` into the file moves the process's wall *and* monotonic clocks at once. Sockets and
``select`` keep real time, and so does everything not started with :meth:`FakeTime.env`
(the test itself, ngircd).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

__all__ = ["FakeTime", "cpu_seconds", "libfaketime"]

_LIB_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"


def libfaketime() -> str | None:
    """The path of Debian's single-threaded ``libfaketime.so.1``, or None if not installed."""
    found = sorted(glob.glob(_LIB_GLOB))
    return found[0] if found else None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (``/proc/PID/stat``), seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", comm may hold spaces
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class FakeTime:
    """One timestamp file, shared by the processes started with :meth:`env`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        lib = libfaketime()
        if lib is None:
            raise RuntimeError(
                "libfaketime is not installed (Debian packages faketime, libfaketime)"
            )
        self.lib = lib
        self.path = Path(folder) / "faketime.rc"
        self.set("+0")

    def env(self) -> dict[str, str]:
        """The environment that makes a child process read its time through the file."""
        return {
            "LD_PRELOAD": self.lib,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
        }

    def set(self, offset: str) -> None:
        """Put the processes' clocks at ``offset`` from real time (``+30h``, ``-2d``, ``+0``).

        Written to a temporary name and renamed, so a process never reads half a line.
        """
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{offset}\n")
        tmp.replace(self.path)
