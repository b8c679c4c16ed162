"""What systemd's directives and unit types become in pidone, as tables, and why the rest is not carried over."""

from __future__ import annotations

_SYSTEMD_TYPES: dict[str, tuple[str, str | None]] = {
    "simple": ("simple", None),
    "exec": ("simple", None),
    "notify": ("notify", None),
    "notify-reload": ("notify", None),
    "oneshot": ("oneshot", None),
    "forking": (
        "simple",
        "pidone supervises the process it starts, so it must stay in the foreground: add the daemon's"
        " no-daemonize flag (e.g. --foreground, --nodaemon, -D, -f, 'daemon off;') to the command",
    ),
    "dbus": ("simple", "pidone does not watch the D-Bus name; the unit is ready once it runs (add a [ready] probe if needed)"),
    "idle": ("simple", "pidone does not wait for other jobs before starting it"),
}

_RESTART_POLICIES: dict[str, tuple[str, str | None]] = {
    "no": ("no", None),
    "on-failure": ("on-failure", None),
    "always": ("always", None),
    "on-abnormal": ("on-failure", "pidone also restarts after a non-zero exit status, not only after a signal or timeout"),
    "on-abort": ("on-failure", "pidone also restarts after a non-zero exit status or a timeout, not only after a signal"),
    "on-watchdog": ("on-failure", "pidone has no watchdog timeout; it restarts after any failure (a failed [health] probe included)"),
    "on-success": ("always", "pidone has no restart-after-a-clean-exit-only policy; it now also restarts after failures"),
}

_OTHER_UNIT_TYPES = {
    "target": "pidone has no targets",
    "socket": "import it together with its service: it becomes that unit's [socket] table",
    "timer": "import it together with its service: it becomes that unit's [timer] table",
    "path": "pidone has no path units",
    "mount": "mounts are the container runtime's job (volumes)",
    "automount": "mounts are the container runtime's job (volumes)",
    "swap": "swap is the host's business",
    "device": "pidone does not track devices",
    "slice": "cgroups are set on the container, not per unit",
    "scope": "cgroups are set on the container, not per unit",
}

_EARLY_TARGETS = {
    "network.target", "network-online.target", "network-pre.target", "nss-lookup.target", "nss-user-lookup.target",
    "local-fs.target", "local-fs-pre.target", "remote-fs.target", "remote-fs-pre.target", "sysinit.target",
    "basic.target", "multi-user.target", "graphical.target", "default.target", "time-sync.target", "time-set.target",
    "sockets.target", "paths.target", "timers.target", "slices.target", "swap.target", "shutdown.target",
    "rpcbind.target", "cryptsetup.target", "getty.target", "getty-pre.target", "emergency.target", "rescue.target",
    "systemd-journald.socket", "systemd-journald-dev-log.socket", "syslog.socket",
}  # fmt: skip

# Variables systemd sets for a service and pidone does not.
_SYSTEMD_PROVIDED = {
    "MAINPID": "the main process's PID, for ExecReload= and ExecStop=",
    "RUNTIME_DIRECTORY": "from RuntimeDirectory=", "STATE_DIRECTORY": "from StateDirectory=",
    "CACHE_DIRECTORY": "from CacheDirectory=", "LOGS_DIRECTORY": "from LogsDirectory=",
    "CONFIGURATION_DIRECTORY": "from ConfigurationDirectory=", "CREDENTIALS_DIRECTORY": "from LoadCredential=",
    "INVOCATION_ID": "an ID of each start", "LISTEN_FDS": "socket activation", "LISTEN_PID": "socket activation",
    "LISTEN_FDNAMES": "socket activation", "JOURNAL_STREAM": "the journal", "WATCHDOG_USEC": "WatchdogSec=",
    "WATCHDOG_PID": "WatchdogSec=", "SERVICE_RESULT": "ExecStopPost=", "EXIT_CODE": "ExecStopPost=",
    "EXIT_STATUS": "ExecStopPost=", "MONITOR_SERVICE_RESULT": "OnFailure= units", "TRIGGER_UNIT": "triggering units",
    "SYSTEMD_EXEC_PID": "the PID it started", "TERM": "services with a TTY",
}  # fmt: skip


def _dependency_reason(word: str, suffix: str) -> str:
    """Return why dependency `word` (a non-service unit) was left out."""
    if word in _EARLY_TARGETS:
        return "a systemd boot milestone: in a container the system is up (network, file systems, time) before pidone starts"
    if suffix == "target":
        return "pidone has no targets; list the services the target groups instead"
    if suffix in ("socket", "timer"):
        return f"a .{suffix} becomes the [{suffix}] table of the service it starts (import the .{suffix} file too): no dependency is needed"
    return _OTHER_UNIT_TYPES[suffix]


_SANDBOXING = {
    "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem",
    "BindPaths", "BindReadOnlyPaths", "MountFlags", "DevicePolicy", "DeviceAllow", "IPAddressAllow",
    "IPAddressDeny", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC", "RootDirectory", "RootImage",
    "RootImageOptions", "RootHash", "RootVerity", "MountAPIVFS", "KeyringMode", "NetworkNamespacePath",
    "IPCNamespacePath", "SecureBits", "SELinuxContext", "AppArmorProfile", "SmackProcessLabel", "ProcSubset",
    "MountImages", "ExtensionImages", "ExtensionDirectories", "NoNewPrivileges", "UMask", "PAMName",
    "IPIngressFilterPath", "IPEgressFilterPath", "SocketBindAllow", "SocketBindDeny", "NFTSet",
}  # fmt: skip
_SANDBOX_PREFIXES = ("Private", "Protect", "Restrict", "SystemCall")
_CGROUP = {
    "Slice", "Delegate", "TasksMax", "TasksAccounting", "AllowedCPUs", "AllowedMemoryNodes", "DisableControllers",
    "DelegateSubgroup", "CPUShares", "StartupCPUShares", "CPUQuota", "CPUQuotaPeriodSec", "CPUWeight",
    "StartupCPUWeight", "CPUAccounting", "ManagedOOMSwap", "ManagedOOMMemoryPressure",
    "ManagedOOMMemoryPressureLimit", "ManagedOOMPreference", "OOMPolicy", "CoredumpReceive",
}  # fmt: skip
_CGROUP_PREFIXES = ("Memory", "IO", "BlockIO", "Startup")
_SCHEDULING = {
    "Nice", "CPUSchedulingPolicy", "CPUSchedulingPriority", "CPUSchedulingResetOnFork", "CPUAffinity",
    "NUMAPolicy", "NUMAMask", "IOSchedulingClass", "IOSchedulingPriority", "TimerSlackNSec", "Personality",
    "CoredumpFilter",
}  # fmt: skip
_LOGGING_PREFIXES = ("Syslog", "Log")
_DIRECTORIES = {
    "RuntimeDirectory": "/run", "StateDirectory": "/var/lib", "CacheDirectory": "/var/cache",
    "LogsDirectory": "/var/log", "ConfigurationDirectory": "/etc",
}  # fmt: skip
_UNIT_ONLY = {
    "Documentation": "pidone units have no documentation key",
    "Conflicts": "pidone has no conflicts: stop the other unit yourself (pidone stop)",
    "OnFailure": "pidone starts no unit when another fails",
    "OnSuccess": "pidone starts no unit when another succeeds",
    "OnFailureJobMode": "pidone starts no unit when another fails",
    "OnSuccessJobMode": "pidone starts no unit when another succeeds",
    "PartOf": "pidone does not propagate stops and restarts from another unit",
    "PropagatesReloadTo": "pidone does not propagate reloads",
    "ReloadPropagatedFrom": "pidone does not propagate reloads",
    "PropagatesStopTo": "pidone does not propagate stops",
    "StopPropagatedFrom": "pidone does not propagate stops",
    "JoinsNamespaceOf": "namespaces are the container's",
    "RequiresMountsFor": "mounts are the container runtime's job (volumes)",
    "WantsMountsFor": "mounts are the container runtime's job (volumes)",
    "StopWhenUnneeded": "pidone keeps every unit running",
    "RefuseManualStart": "pidone start and stop always work",
    "RefuseManualStop": "pidone start and stop always work",
    "AllowIsolate": "pidone has no isolate",
    "IgnoreOnIsolate": "pidone has no isolate",
    "CollectMode": "pidone keeps failed units in status until they start again",
    "JobTimeoutSec": "pidone has no job queue; see [ready] timeout",
    "JobRunningTimeoutSec": "pidone has no job queue; see [ready] timeout",
    "JobTimeoutAction": "pidone has no job queue",
    "JobTimeoutRebootArgument": "pidone has no job queue",
    "StartLimitAction": "pidone marks the unit failed when it gives up; set critical = true to stop the container then",
    "FailureActionExitStatus": "critical units stop the container with the unit's own exit status",
    "SuccessActionExitStatus": "critical units stop the container with the unit's own exit status",
    "RebootArgument": "pidone does not reboot",
    "SourcePath": "pidone has no generators",
}  # fmt: skip


def _leftover_reason(section: str, key: str) -> str:
    """Return why directive `key` of `section` has no place in a pidone unit."""
    if section == "Install":
        return "pidone runs every unit in its directory; there is nothing to enable or install"
    if section.startswith("X-"):
        return f"[{section}] is an extension section systemd itself ignores"
    if section not in ("Unit", "Service"):
        return f"[{section}] is not a section of a service unit"
    if key.startswith(("Condition", "Assert")):
        return "pidone starts every unit unconditionally; test it in the command (a wrapper script) if it matters"
    if key in _UNIT_ONLY:
        return _UNIT_ONLY[key]
    if key in _DIRECTORIES:
        return f"pidone creates no directories: create the directory under {_DIRECTORIES[key]} in the image, owned by the service's user"
    if key.endswith("DirectoryMode") or key == "RuntimeDirectoryPreserve":
        return "pidone creates no directories"
    if key in _SANDBOXING or key.startswith(_SANDBOX_PREFIXES) or key.startswith(("Capability", "Ambient")):
        return "sandboxing: pidone does not sandbox services; the container runtime does (read-only root, tmpfs, seccomp, capabilities)"
    if key in _SCHEDULING:
        return "pidone does not change scheduling; wrap the command (nice, ionice, chrt, taskset) if it matters"
    if key in _CGROUP or key.startswith(_CGROUP_PREFIXES):
        return "cgroup resource control: set it on the container instead (e.g. docker run --memory, --cpus, --pids-limit)"
    if key.startswith(_LOGGING_PREFIXES):
        return "pidone writes a service's output to its own stdout as 'NAME | line'; there is no journal or syslog"
    if key.startswith(("TTY", "Utmp")):
        return "services have no terminal: stdin is /dev/null and output goes through pidone"
    if key in ("Sockets", "FileDescriptorStoreMax", "FileDescriptorStorePreserve", "NonBlocking", "Accept"):
        return "pidone has no socket activation and keeps no file descriptors for services"
    if key in ("BusName",):
        return "pidone does not watch D-Bus names"
    if key.startswith(("LoadCredential", "SetCredential", "ImportCredential")):
        return "pidone has no credentials: mount secrets into the container (files or environment)"
    return "pidone has no equivalent"
