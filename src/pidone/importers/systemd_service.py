"""systemd's [Service] behaviour in pidone: type, restart, timeouts, signals, resource limits,
capabilities and output.

`_ServiceMixin` is part of `systemd._SystemdImport`: it uses its directives, notes and tables.
"""

from __future__ import annotations

from typing import Any

from pidone.importers.systemd_syntax import (
    _kill_mainpid,
    _replace_infinity,
    _rlimit,
    _split_systemd,
    _timespan,
)
from pidone.importers.systemd_tables import _RESTART_POLICIES, _SYSTEMD_TYPES
from pidone.importers.values import NOFILE_INFINITY, _boolean, _safe_bool, _schema_table, _seconds, _signal_name
from pidone.units import CAPABILITIES, DEFAULT_RESTART_DELAY, MAX_DURATION, RLIMITS


class _ServiceMixin:
    """The [Service] directives of a `_SystemdImport` that say how the service runs and stops."""

    def _service_behaviour(self) -> None:
        type_value = self.last("Service", "Type")
        unit_type, why = _SYSTEMD_TYPES.get(type_value or "simple", ("simple", None))
        if type_value is not None and type_value not in _SYSTEMD_TYPES:
            why = "not a systemd type pidone knows"
        if unit_type != "simple":
            self.service["type"] = unit_type
        if why:
            self.notes.approx("Type", type_value, f'written as type = "{unit_type}": {why}')
        if type_value == "forking":
            pid_file = self.last("Service", "PIDFile")
            if pid_file is not None:
                self.notes.drop("PIDFile", pid_file, "pidone supervises the process it started, never one named in a file")
        else:
            for key in ("PIDFile", "GuessMainPID"):
                value = self.last("Service", key)
                if value is not None:
                    self.notes.drop(key, value, "pidone supervises the process it started")
        self._restart(unit_type)
        self._timeouts()
        self._signals(type_value)
        remain = self.last("Service", "RemainAfterExit")
        if remain is not None and _safe_bool(remain) and unit_type != "oneshot":
            self.notes.drop("RemainAfterExit", remain, "only a oneshot unit stays done after its process exits")
        access = self.last("Service", "NotifyAccess")
        if access is not None and access != "all":
            self.notes.approx(
                "NotifyAccess", access, "pidone accepts notifications from every process of the unit (as NotifyAccess=all)"
            )
        for key, good, why in (
            ("KillMode", "control-group", "pidone signals the unit's process group, and SIGKILLs everything the unit started at the stop timeout (as KillMode=control-group)"),
            ("SendSIGKILL", "yes", "pidone always SIGKILLs what is left at the stop timeout"),
        ):  # fmt: skip
            value = self.last("Service", key)
            if value is not None and value.lower() != good and not (good in ("yes", "no") and _safe_bool(value) == (good == "yes")):
                self.notes.drop(key, value, why)
        self._sigpipe()

    def _sigpipe(self) -> None:
        """IgnoreSIGPIPE= (systemd's default: yes)."""
        value = self.last("Service", "IgnoreSIGPIPE")
        try:
            ignore = True if value is None else _boolean(value)
        except ValueError as exc:
            self.notes.drop("IgnoreSIGPIPE", value, f"{exc}; systemd keeps its default, yes")
            ignore = True
        if not ignore:
            return  # pidone's own: services start with SIGPIPE at its default action
        # THE one place where ignore_sigpipe is emitted: [service] ignore_sigpipe (issue #16) is written
        # as soon as the schema has it; until then the difference is noted.
        table = _schema_table("ignore_sigpipe")
        if table is not None:
            (self.service if table == "service" else self.table(table))["ignore_sigpipe"] = True
            return
        self.notes.drop(
            "IgnoreSIGPIPE", value if value is not None else "yes (systemd's default)",
            "systemd starts the service with SIGPIPE ignored, so a write to a closed pipe or socket fails with"
            " EPIPE; pidone starts it with SIGPIPE at its default action, which kills the process instead",
        )  # fmt: skip

    def _restart(self, unit_type: str) -> None:
        value = self.last("Service", "Restart")
        restart = self.table("restart")
        if value is None:
            if unit_type != "oneshot":
                restart["policy"] = "no"  # systemd's default; pidone's own would be on-failure
        else:
            policy, why = _RESTART_POLICIES.get(value, ("on-failure", "not a Restart= value pidone knows"))
            if unit_type == "oneshot" and policy == "always":
                self.notes.drop("Restart", value, "a oneshot unit cannot restart always; written as on-failure")
                policy = "on-failure"
            if policy != "no" or unit_type != "oneshot":
                restart["policy"] = policy
            if why:
                self.notes.approx("Restart", value, f'written as policy = "{policy}": {why}')
        delay = self._duration("Service", "RestartSec", infinite=None)
        if delay is not None:
            restart["delay"] = _seconds(delay)
        max_delay = self._duration("Service", "RestartMaxDelaySec", infinite=None)
        if max_delay is not None:
            restart["max_delay"] = _seconds(max(max_delay, DEFAULT_RESTART_DELAY if delay is None else delay))
        elif delay is not None:
            restart["max_delay"] = _seconds(delay)  # systemd waits the same delay each time
        steps = self.last("Service", "RestartSteps")
        if steps is not None:
            self.notes.approx("RestartSteps", steps, "pidone doubles the delay after each failure, up to max_delay")
        for key in ("RestartPreventExitStatus", "RestartForceExitStatus", "SuccessExitStatus"):
            for status in self.values("Service", key):
                self.notes.drop(key, status, "pidone treats exit status 0 as success and every other as a failure")

    def _duration(self, section: str, key: str, *, infinite: float | None, value: str | None = None) -> float | None:
        """Return the seconds of time-span `key` (`infinite` for "infinity"), or None when absent or wrong (noted)."""
        text = value if value is not None else self.last(section, key)
        if text is None:
            return None
        try:
            seconds = _timespan(text)
        except ValueError as exc:
            self.notes.drop(key, text, str(exc))
            return None
        if seconds is None:
            if infinite is None:
                self.notes.drop(key, text, "pidone has no infinite value here")
            return infinite
        if seconds > MAX_DURATION:
            self.notes.approx(key, text, "pidone's durations go up to one year; written as one year")
            return MAX_DURATION
        return seconds

    def _timeouts(self) -> None:
        both = self.last("Service", "TimeoutSec")
        start_text = self.last("Service", "TimeoutStartSec") or both
        stop_text = self.last("Service", "TimeoutStopSec") or both
        if start_text is not None:
            key = "TimeoutStartSec" if self.last("Service", "TimeoutStartSec") else "TimeoutSec"
            seconds = self._duration("Service", key, infinite=0.0, value=start_text)
            if seconds is not None:
                self.table("ready")["timeout"] = _seconds(seconds)  # 0: no limit, for systemd and pidone alike
        if stop_text is not None:
            key = "TimeoutStopSec" if self.last("Service", "TimeoutStopSec") else "TimeoutSec"
            seconds = self._duration("Service", key, infinite=-1.0, value=stop_text)
            if seconds is not None:
                if seconds in (0.0, -1.0):  # systemd: 0 and infinity both disable the timeout
                    self.notes.approx(
                        key, stop_text, "pidone has no endless stop timeout (its 0 means SIGKILL at once); written as one year"
                    )
                    seconds = MAX_DURATION
                self.table("stop")["timeout"] = _seconds(seconds)
        for key in ("TimeoutAbortSec", "TimeoutStartFailureMode", "TimeoutStopFailureMode", "RuntimeMaxSec", "RuntimeRandomizedExtraSec", "WatchdogSec"):
            value = self.last("Service", key)
            if value is not None:
                why = (
                    "pidone has no watchdog timeout (WATCHDOG=1 is accepted but not timed); use a [health] probe"
                    if key == "WatchdogSec" else "pidone has no equivalent"
                )  # fmt: skip
                self.notes.drop(key, value, why)

    def _signals(self, type_value: str | None) -> None:
        stop = self.table("stop")
        kill = self.last("Service", "KillSignal")
        if kill is not None:
            try:
                stop["signal"] = _signal_name(kill)
            except ValueError as exc:
                self.notes.drop("KillSignal", kill, str(exc))
        for key in ("RestartKillSignal", "FinalKillSignal", "WatchdogSignal"):
            value = self.last("Service", key)
            if value is not None:
                self.notes.drop(key, value, "pidone stops with [stop] signal, then SIGKILL")
        reloads = self.values("Service", "ExecReload")
        reload_signal = self.last("Service", "ReloadSignal")
        if type_value == "notify-reload":
            try:
                stop["reload_signal"] = _signal_name(reload_signal or "SIGHUP")
            except ValueError as exc:
                self.notes.drop("ReloadSignal", reload_signal, str(exc))
        elif reload_signal is not None:
            self.notes.drop("ReloadSignal", reload_signal, "only used by Type=notify-reload")
        signals = [_kill_mainpid(self._kill_words("ExecReload", value) or []) for value in reloads]
        kills = [index for index, name in enumerate(signals) if name]
        for index, value in enumerate(reloads):
            if kills and index == kills[-1]:
                stop["reload_signal"] = signals[index]
            else:
                self.notes.drop(
                    "ExecReload", value,
                    "pidone reloads a unit only by sending it a signal ([stop] reload_signal, sent by `pidone reload UNIT`)",
                )  # fmt: skip
        stops = self.values("Service", "ExecStop")
        for value in stops:
            words = self._kill_words("ExecStop", value)
            name = _kill_mainpid(words) if words is not None else None
            if name and len(stops) == 1 and kill is None:
                stop["signal"] = name
                self.notes.approx("ExecStop", value, f'written as [stop] signal = "{name}"')
            else:
                self.notes.drop(
                    "ExecStop", value,
                    "pidone stops a unit by sending [stop] signal, then SIGKILL after [stop] timeout; it runs no stop command",
                )  # fmt: skip
        for key, why in (
            ("ExecStartPost", "pidone runs only the main command (and ExecStartPre= before it); run it from the service or another unit"),
            ("ExecStopPost", "pidone runs no command after a unit stops"),
            ("ExecCondition", "pidone starts every unit unconditionally"),
        ):  # fmt: skip
            for value in self.values("Service", key):
                self.notes.drop(key, value, why)

    def _kill_words(self, directive: str, value: str) -> list[str] | None:
        body = value.lstrip("-@:+!|")
        try:
            return [self.expand(directive, word, whole=value) for word in _split_systemd(body)[0]]
        except ValueError:
            return None

    # -- [Service] limits and privileges

    def _limits(self) -> None:
        limits = self.table("limits")
        for (section, key) in self.order:
            if section != "Service" or not key.startswith("Limit"):
                continue
            value = self.last(section, key)
            if value is None:
                continue
            name = key[len("Limit") :].lower()
            if name not in RLIMITS:
                self.notes.drop(key, value, "no such resource limit on this system (pidone names them after RLIMIT_*)")
                continue
            try:
                limits[name] = _rlimit(name, value)
            except ValueError as exc:
                self.notes.drop(key, value, str(exc))
                continue
            if name == "nofile" and "infinity" in (limits[name] if isinstance(limits[name], list) else [limits[name]]):
                limits[name] = _replace_infinity(limits[name], NOFILE_INFINITY)
                self.notes.approx(
                    key, value, f"Linux refuses an infinite nofile limit (systemd caps it at fs.nr_open); written as {NOFILE_INFINITY}"
                )
            if name == "nofile" and any(v > 1024 for v in (limits[name] if isinstance(limits[name], list) else [limits[name]])):
                self.notes.approx(
                    key, value,
                    "where the container's hard limit is lower and pidone may not raise it, pidone starts the unit with"
                    " the highest value allowed and logs a warning (a container's limit is often below systemd's)",
                )  # fmt: skip
        value = self.last("Service", "NoNewPrivileges")
        if value is not None:
            try:
                if _boolean(value):
                    limits["no_new_privileges"] = True
            except ValueError as exc:
                self.notes.drop("NoNewPrivileges", value, str(exc))
        self._capabilities(limits)

    def _capabilities(self, limits: dict[str, Any]) -> None:
        everything = set(CAPABILITIES)
        current: set[str] | None = None  # None: the full set, unchanged
        for value in self.directives.get(("Service", "CapabilityBoundingSet"), []):
            words = value.split()
            if not words:
                current = set()
                continue
            invert = words[0].startswith("~")
            words[0] = words[0].removeprefix("~")
            listed = set()
            for word in filter(None, words):
                cap = word.upper() if word.upper().startswith("CAP_") else "CAP_" + word.upper()
                if cap in CAPABILITIES:
                    listed.add(cap)
                else:
                    self.notes.drop("CapabilityBoundingSet", word, "not a capability pidone knows")
            if invert:
                current = (everything if current is None else current) - listed
                if not listed:
                    current = None
            else:
                current = (set() if current is None else current) | listed
        self.handled.add(("Service", "CapabilityBoundingSet"))
        if current is not None and current != everything:
            if "+" in self.main_prefixes:
                self.notes.approx(
                    "CapabilityBoundingSet", " ".join(sorted(current)),
                    'not written: the main command\'s "+" prefix runs it with full privileges, the bounding set'
                    " applying only to the unit's other commands (pidone has one set for all)",
                )  # fmt: skip
            else:
                limits["capabilities"] = sorted(current, key=CAPABILITIES.__getitem__)
        for value in self.values("Service", "AmbientCapabilities"):
            self.notes.drop(
                "AmbientCapabilities", value,
                "pidone sets no ambient capabilities: a service running as root keeps its bounding set;"
                " for another user, give the binary file capabilities (setcap) in the image",
            )  # fmt: skip

    # -- [Service] output

    def _output(self) -> None:
        files = {}
        for key in ("StandardOutput", "StandardError"):
            value = self.last("Service", key)
            if value is None:
                continue
            kind, _colon, path = value.partition(":")
            if kind in ("journal", "syslog", "kmsg", "journal+console", "syslog+console", "kmsg+console", "inherit"):
                continue  # pidone's stdout is the container's log: the nearest thing to the journal
            if kind in ("append", "file", "truncate") and path.startswith("/"):
                files[key] = (path, value)
                continue
            if kind == "null":
                self.notes.drop(key, value, "pidone always passes a service's output on to its own stdout")
            else:
                self.notes.drop(key, value, "pidone passes a service's output on to its own stdout, and optionally a [log] file")
        paths = list(dict.fromkeys(path for path, _value in files.values()))
        if paths:
            self.table("log")["file"] = paths[0]
            for key, (path, value) in files.items():
                if path != paths[0]:
                    self.notes.drop(key, value, f"pidone writes both streams to one [log] file, {paths[0]}")
                else:
                    self.notes.approx(
                        key, value,
                        "written as [log] file: pidone appends both streams there, rotates it, and still passes them to its stdout",
                    )  # fmt: skip
        value = self.last("Service", "StandardInput")
        if value is not None and value != "null":
            self.notes.drop("StandardInput", value, "a service's stdin is /dev/null")
