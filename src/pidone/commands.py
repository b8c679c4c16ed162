"""Answers control requests from the supervisor's state: status, start,
stop, restart (with --wait), reload (the directory, one unit, or a dry
run), logs and events (with -f). Commands record intent and return; --wait
only delays the answer, never the init."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from pidone import __version__
from pidone import events as ev
from pidone.control import protocol
from pidone.errors import ControlError

if TYPE_CHECKING:
    from pidone.control.server import Connection
    from pidone.supervisor import Supervisor

STARTED_OK = {"running", "exited", "skipped (condition)"}  # as systemctl: a false condition is no error
SETTLED = {"running", "exited", "failed", "skipped", "skipped (condition)"}


class Commands:
    """The control socket's handler: `commands(conn, request)`."""

    def __init__(self, supervisor: "Supervisor", info: Callable[[], dict],
                 reexec: Callable[["Connection"], None] | None = None):
        self._sup = supervisor
        self._info = info
        self._reexec = reexec

    def __call__(self, conn: "Connection", request: protocol.Request) -> None:
        getattr(self, "_cmd_" + request.cmd)(conn, request.args)

    # -- reading ----------------------------------------------------------------

    def _cmd_ping(self, conn: "Connection", args: dict) -> None:
        conn.reply(protocol.ok(self._info()))

    def _cmd_status(self, conn: "Connection", args: dict) -> None:
        names = self._known(args["units"]) if args["units"] else None
        conn.reply(protocol.ok({"pidone": self._info(), "units": self._sup.status(names)}))

    def _cmd_logs(self, conn: "Connection", args: dict) -> None:
        names = self._known(args["units"])
        router = self._sup.router
        lines = []
        for name in names:
            history = router.history.get(name)
            if history is not None:
                lines.extend((when, name, stream, line) for when, stream, line in history.last(args["lines"]))
        lines.sort(key=lambda item: item[0])
        lines = lines[-args["lines"]:] if args["lines"] else []
        records = [_log_record(when, name, stream, line) for when, name, stream, line in lines]
        if not args["follow"]:
            conn.reply(protocol.ok({"lines": records}))
            return
        for record in records:
            conn.send_stream(protocol.stream(record))
        wanted = set(names)

        def follow(unit: str, stream: str, when: float, line: bytes) -> None:
            if unit in wanted:
                conn.send_stream(protocol.stream(_log_record(when, unit, stream, line)))

        router.followers.add(follow)
        conn.on_close.append(lambda: router.followers.discard(follow))

    def _cmd_events(self, conn: "Connection", args: dict) -> None:
        history = list(self._sup.events)[-args["lines"]:] if args["lines"] else []
        if not args["follow"]:
            conn.reply(protocol.ok({"events": history}))
            return
        for event in history:
            conn.send_stream(protocol.stream(event))
        send = lambda event: conn.send_stream(protocol.stream(event))  # noqa: E731
        self._sup.event_followers.add(send)
        conn.on_close.append(lambda: self._sup.event_followers.discard(send))

    # -- changing ------------------------------------------------------------------

    def _cmd_start(self, conn: "Connection", args: dict) -> None:
        records = self._sup.machine.records
        new = [name for name in dict.fromkeys(args["units"]) if name not in records]
        for name in new:  # NAME@INSTANCE of a template: made first, through the reload path
            why = self._sup.instances.why_not(name)
            if why:
                raise ControlError("unknown-unit", why)

        def start() -> None:
            self._change(conn, args, ev.StartUnit, lambda rec: rec.state.value in SETTLED,
                         lambda rec: rec.state.value in STARTED_OK)

        if not new:
            start()
            return
        for name in new:
            self._sup.instances.start(name)

        def made(summary: str | None, failure: str = "") -> None:
            if conn.closed:
                return
            missing = [name for name in new if name not in records]
            if summary is None or missing:
                reason = failure or f"{', '.join(missing)} could not be made; see pidone's log"
                conn.reply(protocol.error("failed", reason))
                return
            try:
                start()
            except ControlError as exc:
                conn.reply(protocol.error(exc.code, exc.message))

        self._sup.apply_instances(on_done=made)

    def _cmd_stop(self, conn: "Connection", args: dict) -> None:
        self._change(conn, args, ev.StopUnit, lambda rec: rec.down, lambda rec: rec.down)
        # An instance `pidone start` made lives until it is stopped.
        if any([self._sup.instances.stop(name, self._sup.units) for name in self._known(args["units"])]):
            self._sup.apply_instances()

    def _cmd_restart(self, conn: "Connection", args: dict) -> None:
        names = self._known(args["units"])
        before = {name: self._sup.machine.records[name].started_at for name in names}

        def settled(rec) -> bool:
            return rec.started_at != before.get(rec.name) and rec.state.value in SETTLED

        self._change(conn, args, ev.RestartUnit, settled, lambda rec: rec.state.value in STARTED_OK)

    def _change(self, conn: "Connection", args: dict, event: type, settled, good) -> None:
        names = self._known(args["units"])
        for name in names:
            self._sup.submit(event(name))
        if not args["wait"]:
            conn.reply(protocol.ok({"units": names, "waited": False}))
            return
        records = self._sup.machine.records

        def done() -> bool:
            return conn.closed or all(name not in records or settled(records[name]) for name in names)

        def answer() -> None:
            if conn.closed:
                return
            results = []
            for name in names:
                rec = records.get(name)
                results.append({"unit": name, "state": rec.state.value if rec else "removed",
                                # A stopped instance `pidone start` made is removed: as asked.
                                "ok": bool(good(rec)) if rec else event is ev.StopUnit, "reason": (rec.reason or rec.last_exit) if rec else ""})
            failed = [r["unit"] for r in results if not r["ok"]]
            if failed:
                conn.reply(protocol.encode({"ok": False, "error": {
                    "code": "failed", "message": f"not as asked: {', '.join(failed)}; see `pidone status`"},
                    "result": {"units": results}}))
            else:
                conn.reply(protocol.ok({"units": results, "waited": True}))

        self._sup.wait_until(done, answer)

    def _cmd_reload(self, conn: "Connection", args: dict) -> None:
        if args["unit"] is not None:
            name = self._known([args["unit"]])[0]
            signum = self._sup.signal_main(name)
            if signum is None:
                raise ControlError("not-running", f"unit {name} has no running main process to reload")
            from pidone.sysdeps import signal_name

            conn.reply(protocol.ok({"unit": name, "signal": signal_name(signum) if signum else "exec_reload"}))
            return
        if args["plan"]:
            conn.reply(protocol.ok(self._plan()))
            return
        def done(summary: str | None, failure: str = "") -> None:
            if summary is None:
                conn.reply(protocol.error("failed", failure))
            else:
                conn.reply(protocol.ok({"summary": summary}))

        self._sup.reload(on_done=done)

    def _cmd_reexec(self, conn: "Connection", args: dict) -> None:
        if self._reexec is None:
            raise ControlError("unavailable", "re-exec is not available in this pidone")
        self._reexec(conn)

    # -- helpers -----------------------------------------------------------------

    def _known(self, names: list[str]) -> list[str]:
        records = self._sup.machine.records
        for name in names:
            if name not in records:
                raise ControlError("unknown-unit", f"no unit named {name!r}; `pidone status` lists them")
        return list(dict.fromkeys(names))

    def _plan(self) -> dict:
        plan, blocked, diff, problems, warnings = self._sup.plan()
        if plan is None:
            raise ControlError("failed", "the units directory cannot be read; a reload would change nothing")
        actions = {}
        for kind, names in (("start", diff.added), ("stop", diff.removed), ("restart", diff.changed),
                            ("reorder", diff.reordered), ("keep", diff.unchanged)):
            for name in names:
                actions[name] = kind
        reasons = dict(blocked)
        from pidone.units_lifecycle import HOOK_KEYS

        for name in diff.changed:  # hooks are easy to miss in a diff: name them
            old, new = self._sup.units[name].service, plan[name].service
            hooks = [key for key in HOOK_KEYS if getattr(old, key) != getattr(new, key)]
            if hooks:
                reasons[name] = "changes " + ", ".join(hooks)
        # What requires (or is part_of) a changed unit is stopped before it
        # and started again after it: say so, as the reload will do it.
        requirers: dict[str, dict[str, str]] = {}
        for name, unit in plan.items():
            for target in unit.dependencies.part_of:
                requirers.setdefault(target, {})[name] = "is part_of a unit that restarts"
            for target in unit.dependencies.requires:
                requirers.setdefault(target, {})[name] = "requires a unit that restarts"
        todo = list(diff.changed)
        while todo:
            for dependent, why in requirers.get(todo.pop(), {}).items():
                if actions.get(dependent) in ("keep", "reorder"):
                    actions[dependent] = "restart"
                    reasons[dependent] = why
                    todo.append(dependent)
        for name in blocked:
            if name in actions and actions[name] in ("start", "restart"):
                actions[name] = "skip"
        units = [{"unit": name, "action": actions[name], "reason": reasons.get(name, "")} for name in sorted(actions)]
        return {"units": units, "errors": [str(p) for ps in problems.values() for p in ps],
                "warnings": [str(w) for w in warnings]}


def _log_record(when: float, unit: str, stream: str, line: bytes) -> dict:
    return {"time": when, "unit": unit, "stream": stream, "message": line.decode("utf-8", "replace")}


def init_info(started_at: float, units_dir: str | None) -> dict:
    return {"version": __version__, "pid": os.getpid(), "started_at": started_at, "units_dir": units_dir}
