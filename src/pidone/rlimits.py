"""A unit's [limits] rlimits, fitted to what this pidone may grant.

Raising a hard limit above pidone's own needs CAP_SYS_RESOURCE (in the
initial user namespace, which a rootless container's root does not have),
and `nofile` can never go above fs.nr_open. Debian's redis unit asks for
nofile = 65535 and many containers allow less: a unit that can never start
helps nobody, so it starts with the highest value allowed and a note says
what was asked and what was given. A value pidone *can* raise is raised.

Whether pidone may raise is found by trying it on itself (raise, then lower
again at once: lowering is always allowed): that answers for capabilities,
user namespaces and nr_open alike, where reading them would guess.
"""

from __future__ import annotations

import math
import resource

RLIM_INFINITY = resource.RLIM_INFINITY
NR_OPEN = "/proc/sys/fs/nr_open"

Rlimit = tuple[int, str, int, int]  # (RLIMIT_* number, name, soft, hard)


def fit(rlimits: list[Rlimit]) -> tuple[list[Rlimit], list[str]]:
    """Return the rlimits to set, each hard limit lowered to what may be
    set here, and one note per limit lowered."""
    fitted, notes = [], []
    for number, name, soft, hard in rlimits:
        current_soft, current_hard = resource.getrlimit(number)
        if _order(hard) <= _order(current_hard):
            fitted.append((number, name, soft, hard))
            continue
        allowed, why = _highest_hard(number, hard, current_soft, current_hard)
        given_soft = soft if _order(soft) <= _order(allowed) else allowed
        fitted.append((number, name, given_soft, allowed))
        if allowed != hard:
            notes.append(f"[limits] {name} = {_show(soft, hard)} is more than pidone may grant here ({why}); "
                         f"started with {_show(given_soft, allowed)}")
    return fitted, notes


def _highest_hard(number: int, wanted: int, soft: int, hard: int) -> tuple[int, str]:
    """The highest hard limit up to `wanted` a child of pidone may set,
    and why it is not `wanted` when it is not."""
    if _can_raise(number, soft, wanted):
        return wanted, ""
    if number == resource.RLIMIT_NOFILE:
        nr_open = _nr_open()
        if nr_open is not None and hard < nr_open < _order(wanted) and _can_raise(number, soft, nr_open):
            return nr_open, f"fs.nr_open is {nr_open}"
    return hard, f"the hard limit is {_show(hard, hard)}; raising it needs CAP_SYS_RESOURCE"


def _can_raise(number: int, soft: int, hard: int) -> bool:
    """Try raising pidone's own hard limit to `hard`, and put it back."""
    try:
        before = resource.getrlimit(number)
        resource.setrlimit(number, (soft, hard))
    except (ValueError, OSError):
        return False
    try:
        resource.setrlimit(number, before)
    except (ValueError, OSError):
        pass  # lowering is always allowed; and a higher limit harms nobody
    return True


def _nr_open() -> int | None:
    try:
        with open(NR_OPEN, "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _order(limit: int) -> int | float:
    return math.inf if limit == RLIM_INFINITY else limit


def _show(soft: int, hard: int) -> str:
    def one(limit: int) -> str:
        return '"infinity"' if limit == RLIM_INFINITY else str(limit)

    return one(soft) if soft == hard else f"[{one(soft)}, {one(hard)}]"
