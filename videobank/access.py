"""Who the bank's staff are: the groups of the role matrix and the ``access_*`` checks on them.

Platform, not an app's: every app's pages and sockets, and the admin site, ask the same four
questions. What a customer may open (their call's token) is ``queueing.access``; what a device
proves (an enrolled kiosk, a bank-signed app claim) is ``signaling.access``.
"""

from __future__ import annotations

TELLER_GROUP = "teller"
SUPERVISOR_GROUP = "supervisor"
QA_GROUP = "qa"
ADMIN_GROUP = "admin"


def user_in_group(user, group: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_superuser or user.groups.filter(name=group).exists()


def access_teller(user) -> bool:
    """May this user work as a teller (console, teller socket)?"""
    return user_in_group(user, TELLER_GROUP) or user_in_group(user, SUPERVISOR_GROUP)


def access_supervisor(user) -> bool:
    """May this user watch the wallboard and act on other tellers and calls?"""
    return user_in_group(user, SUPERVISOR_GROUP)


def access_qa(user) -> bool:
    """May this user list and replay recordings (the QA console)? Every replay is audited."""
    return user_in_group(user, QA_GROUP) or user_in_group(user, ADMIN_GROUP)


def access_admin(user) -> bool:
    """May this user use the admin (kiosks and their credentials included)?"""
    return user_in_group(user, ADMIN_GROUP)
