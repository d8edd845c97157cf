"""Who is signed in. The session cookie (signed with SECRET_KEY, HttpOnly, SameSite=Lax,
Secure in production) carries only the staff id, the sign-in time and the account's session
generation. The account is read again on every request, and the cookie holds only while the
generation matches: signing out moves it on, so a cookie copied before (from a shared phone, a
proxy log) opens nothing after, and removing the account ends its sessions at once."""
from __future__ import annotations

import time
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for

from gateway.console import accounts, csrf

SESSION_IDLE_SECONDS = 2 * 3600   # a session unused this long ends (the cookie is renewed on each request)
SESSION_MAX_SECONDS = 12 * 3600   # and none outlives a working day, used or not


def _runtime():
    return current_app.extensions["gateway"].runtime


def begin(account: accounts.Account) -> None:
    session.clear()
    session.permanent = True
    session["staff"], session["since"], session["gen"] = account.id, int(time.time()), account.generation
    csrf.rotate()


def end() -> None:
    session.clear()
    csrf.rotate()


def sign_out() -> None:
    """End this session and every other one of the account, server-side."""
    if g.get("staff") is not None:
        accounts.end_sessions(_runtime(), g.staff.id)
    end()


def load() -> None:
    """A `before_request` hook: `g.staff` is the signed-in account or None."""
    g.staff = None
    staff_id, since = session.get("staff"), session.get("since", 0)
    if staff_id is None:
        return
    if time.time() - since > SESSION_MAX_SECONDS:
        end()
        return
    g.staff = accounts.active(_runtime(), staff_id)
    if g.staff is None or g.staff.generation != session.get("gen"):
        g.staff = None
        end()


def roles(*allowed: str):
    """Sign-in required; a role outside `allowed` gets 404, as if the page did not exist."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.staff is None:
                return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
            if g.staff.role not in allowed:
                abort(404)
            return view(*args, **kwargs)
        return wrapped
    return decorate
