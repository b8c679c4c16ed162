"""systemd's ExecStart= (and ExecStartPre=) as a pidone command: a plain argv when the meaning allows it,
else a `/bin/sh -c` script, with systemd's variable references rendered for the shell.

`_ExecMixin` is part of `systemd._SystemdImport`: it uses its directives, notes and specifiers.
"""

from __future__ import annotations

import re
import shlex

from pidone.importers.systemd_syntax import _expand_quiet, _split_systemd, _words_or_split
from pidone.importers.systemd_tables import _SYSTEMD_PROVIDED, _SYSTEMD_TYPES
from pidone.importers.values import SHELL

# --- shell rendering -----------------------------------------------------------

_WHOLE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")


def _render_word(word: str, expand: bool) -> str:
    """Return one argument as shell text; with `expand`, systemd's variable references become the shell's.

    A word that is exactly `$NAME` stays unquoted, so its value is split at
    whitespace (systemd does the same); `${NAME}` anywhere stays one
    argument; `$$` is a literal `$`. Everything else is quoted.
    """
    if not expand:
        return shlex.quote(word)
    if _WHOLE_VAR.fullmatch(word):
        return word
    parts: list[str] = []
    pos = 0
    for match in _BRACED_VAR.finditer(word):
        literal = word[pos : match.start()]
        if literal:
            parts.append(shlex.quote(literal))
        parts.append("'$'" if match.group(0) == "$$" else f'"${{{match.group(1)}}}"')
        pos = match.end()
    if pos < len(word) or not parts:
        parts.append(shlex.quote(word[pos:]))
    return "".join(parts)


def _variables(words: list[str]) -> list[str]:
    """Return the names of the variables systemd would expand in `words`, in order."""
    names: list[str] = []
    for word in words:
        whole = _WHOLE_VAR.fullmatch(word)
        if whole:
            names.append(whole.group(1))
            continue
        names.extend(m.group(1) for m in _BRACED_VAR.finditer(word) if m.group(1))
    return list(dict.fromkeys(names))


def _substitute(words: list[str], env: dict[str, str]) -> list[str]:
    """Return `words` with systemd's variable references replaced from `env` (all of them are defined there)."""
    out: list[str] = []
    for word in words:
        whole = _WHOLE_VAR.fullmatch(word)
        if whole:
            out.extend(_words_or_split(env[whole.group(1)]))
            continue
        out.append(_BRACED_VAR.sub(lambda m: "$" if m.group(0) == "$$" else env[m.group(1)], word))
    return out


def _inline_script(words: list[str], expand: bool) -> str | None:
    """Return `sh -c SCRIPT` as a subshell of the chain's own shell (no second /bin/sh), or None.

    systemd would replace ${VAR} in SCRIPT before the shell reads it; left to the shell, a value would
    not be parsed as script text: such a script keeps its own `sh -c`.
    """
    if len(words) != 3 or words[0] not in ("sh", "/bin/sh", "/usr/bin/sh") or words[1] != "-c":
        return None
    script = words[2]
    if expand:
        if "${" in script:
            return None
        script = script.replace("$$", "$")
    return f"( {script}\n)"


class _Unconvertible(Exception):
    """The input cannot be turned into a unit at all; the message says why."""


class _ExecMixin:
    """ExecStart= and ExecStartPre= of a `_SystemdImport`."""

    def _command(self) -> list[str]:
        """Return the pidone command for ExecStart (and ExecStartPre); raise _Unconvertible."""
        starts = self._commands("ExecStart")
        if not starts:
            raise _Unconvertible("no ExecStart=: there is nothing to run")
        type_value = self.last("Service", "Type") or "simple"
        unit_type = _SYSTEMD_TYPES.get(type_value, ("simple", None))[0]
        if len(starts) > 1 and unit_type != "oneshot":
            raw = self.values("Service", "ExecStart")
            self.notes.drop(
                "ExecStart", raw[-1], "only Type=oneshot services may have more than one ExecStart=; the first one is kept"
            )
            starts = starts[:1]
        self.main_prefixes = starts[0][1] if len(starts) == 1 else ""
        pres = self._commands("ExecStartPre")
        files = any(
            _expand_quiet(value, self.specifiers, self.names.template).removeprefix("-").startswith("/")
            for value in self.values("Service", "EnvironmentFile")
        )
        passed = bool(self.values("Service", "PassEnvironment"))
        static_env = self._static_environment()
        # systemd gives EnvironmentFile= precedence over Environment=; pidone's environment would win
        # over its environment_files, so the Environment= values become defaults in the shell instead.
        defaults = list(static_env.items()) if files else []
        self.env_in_shell = bool(defaults)
        chain = [*pres, *starts]
        for directive, prefixes, words, value in chain:
            self._prefix_notes(directive, prefixes, value, chained=len(chain) > 1, main=directive == "ExecStart")
        if len(chain) == 1 and not defaults:
            _directive, prefixes, words, _value = chain[0]
            expand = ":" not in prefixes and "|" not in prefixes
            names = _variables(words) if expand else []
            if not names or (not files and not passed and all(n in static_env for n in names)):
                argv = _substitute(words, static_env) if names else list(words)
                if argv and all(argv) and "|" not in prefixes:
                    return argv
        return self._shell(chain, defaults)

    def _commands(self, directive: str) -> list[tuple[str, str, list[str], str]]:
        """Return [(directive, prefixes, words, value)] for each command of `directive`."""
        out = []
        for value in self.values("Service", directive):
            prefixes = re.match(r"[-@:+!|]*", value).group(0)  # type: ignore[union-attr]
            try:
                # As systemd: split into words (undoing escapes) first, then replace specifiers in each.
                words, raws = _split_systemd(value[len(prefixes) :])
            except ValueError as exc:
                self.notes.drop(directive, value, f"cannot be split into words: {exc}")
                continue
            words = [self.expand(directive, word, whole=value) for word in words]
            # A lone ";" separates commands (old systemd syntax); "\;" is a literal ";".
            command: list[str] = []
            for word, raw in [*zip(words, raws), (None, ";")]:
                if raw == ";":
                    if "@" in prefixes and len(command) > 1:
                        command = [command[0], *command[2:]]  # argv[0] cannot be chosen in pidone
                    if command:
                        out.append((directive, prefixes, command, value))
                    command = []
                else:
                    command.append(word)  # type: ignore[arg-type]
            if not words:
                self.notes.drop(directive, value, "an empty command")
        return out

    def _prefix_notes(self, directive: str, prefixes: str, value: str, *, chained: bool, main: bool) -> None:
        if "-" in prefixes and (main and not chained):
            self.notes.drop(
                directive, value, 'the "-" prefix: pidone counts a non-zero exit as a failure; make the command exit 0'
            )
        if "@" in prefixes:
            self.notes.drop(
                directive, value,
                'the "@" prefix: pidone passes the program as its own argv[0]; the second word, the argv[0]'
                " systemd would have passed, is left out",
            )  # fmt: skip
        if "!!" in prefixes:
            self.notes.approx(
                directive, value,
                'the "!!" prefix: systemd ignores it where the kernel has ambient capabilities (every current one),'
                " so the command runs with the unit's user, as here",
            )  # fmt: skip
        elif ("+" in prefixes or "!" in prefixes) and not (main and prefixes == self.main_prefixes):
            self.notes.drop(
                directive, value, 'the "+"/"!" prefix: pidone runs every command of a unit with the unit\'s user and limits'
            )
        if "|" in prefixes:
            self.notes.approx(directive, value, f"runs through {SHELL} -c, not the user's login shell")

    def _static_environment(self) -> dict[str, str]:
        """Return the environment systemd would expand ExecStart= with, when it is all known here."""
        env = {}
        for value in self.values("Service", "Environment"):
            for key, text in self._assignments(value, note=False):
                env[key] = text
        return env

    def _shell(self, chain: list[tuple[str, str, list[str], str]], defaults: list[tuple[str, str]]) -> list[str]:
        """Return a `/bin/sh -c` command that runs `chain` in order, stopping at the first failure.

        `defaults` (NAME, value) are set first, each only when the environment (from the unit's
        environment_files) does not already hold it.
        """
        parts = []
        variables: list[str] = []
        for index, (directive, prefixes, words, _value) in enumerate(chain):
            expand = ":" not in prefixes
            last = index == len(chain) - 1
            inline = None if last else _inline_script(words, expand)
            if expand:
                variables.extend(_variables(words))
            text = inline or " ".join(_render_word(word, expand) for word in words)
            if "-" in prefixes and len(chain) > 1:
                text = f"{{ {text} || :; }}"
            elif last:
                text = f"exec {text}"
            parts.append(text)
        prelude = [f'test -n "${{{name}+set}}" || export {name}={shlex.quote(value)}' for name, value in defaults]
        script = "; ".join([*prelude, " && ".join(parts)])
        reasons = []
        if defaults:
            names = ", ".join(name for name, _value in defaults)
            reasons.append(
                f"Environment= sets {names} only where the EnvironmentFile= files left them unset, since systemd"
                " gives the files precedence (pidone's environment would override them); a value in the container's"
                " own environment wins too"
            )
        pres = sum(1 for d, _p, _w, _v in chain if d == "ExecStartPre")
        if pres:
            reasons.append(f"the ExecStartPre= command{'s run' if pres > 1 else ' runs'} first, in the same shell")
        if len(chain) - pres > 1:
            reasons.append(f"the {len(chain) - pres} ExecStart= commands run in turn")
        if len(chain) > 1:
            reasons.append('the chain stops at the first failure, except after a command with the "-" prefix, as systemd does')
        variables = list(dict.fromkeys(variables))
        if variables:
            names = ", ".join("$" + name for name in variables)
            reasons.append(f"the shell expands {names} at each start, from the unit's environment (pidone itself never runs a shell)")
            provided = [name for name in variables if name in _SYSTEMD_PROVIDED]
            for name in provided:
                self.notes.drop(f"${name}", None, f"systemd sets it for the service ({_SYSTEMD_PROVIDED[name]}); pidone does not")
        if any(not word for _d, _p, words, _v in chain for word in words):
            reasons.append("an empty argument can only be passed through a shell")
        self.notes.approx(
            "ExecStart", chain[-1][3],
            f"runs as {SHELL} -c {script!r}: " + "; ".join(reasons or ["systemd's command syntax needs a shell here"])
            + f"; the image needs {SHELL}",
        )  # fmt: skip
        return [SHELL, "-c", script]
