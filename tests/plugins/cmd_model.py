"""A small model of how cmd.exe reads and runs a batch file, for the constructs our .bat files use.

There is no Windows here, and Wine's cmd is a re-implementation that differs exactly where it
matters (when %VAR% is expanded, how a `)` in a value closes a block), so the tests run each
.bat under this model of cmd's documented parsing phases (the phase numbers follow the widely
cited analysis "How does the Windows Command Interpreter (CMD.EXE) parse scripts?", dbenham and
jeb, Stack Overflow question 4094699):

- phase 1, percent expansion, on each physical line as it is read; a parenthesised block is read
  whole (line after line) *before* any command in it runs, so `%CD%` inside an `if (...)` block is
  the value before the block, and a `)` inside the value closes the block: cmd then says
  "<rest> was unexpected at this time." and stops the batch;
- phase 2, tokens: `"` toggles quoting; outside quotes `^` escapes the next character and `&`,
  `&&`, `||`, `(` (at the start of a command) and `)` (inside a block) are operators;
- phase 5, delayed expansion, only under `setlocal EnableDelayedExpansion` or the registry's
  DelayedExpansion default (`delayed_default=True`): `!VAR!` is replaced, a lone `!` vanishes and
  `^` escapes once more, also inside quotes and inside values phase 1 put there;
- `call` runs phase 1 a second time; `exit /b` without a number keeps ERRORLEVEL; `%ERRORLEVEL%`
  is the errorlevel at expansion time; a batch ends with an implicit `endlocal` for its setlocals.

Anything else (redirection, pipes, `for`, `else`, `%VAR:~n%`) raises NotModeled, so a later
edit of a .bat that uses it fails here instead of being checked by a model that does not know it.
External programs are not run: each is recorded as (program as cmd resolves it, raw argument
string, environment, working folder) and answered by a callback with its exit code.
"""

from __future__ import annotations

import ntpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field


class NotModeled(Exception):
    """The batch file uses a construct this model does not know."""


class CmdSyntaxError(Exception):
    """What cmd.exe reports and stops on, e.g. "& was unexpected at this time."."""


class _Exit(Exception):
    def __init__(self, code: int | None):
        self.code = code


class _Goto(Exception):
    def __init__(self, label: str):
        self.label = label


@dataclass
class Invocation:
    program: str
    arguments: str
    env: dict[str, str]
    cwd: str


@dataclass
class Frame:
    env: dict[str, str]
    delayed: bool


@dataclass
class Machine:
    """Files that exist (full Windows paths, case-insensitive), the environment, the current folder."""

    files: dict[str, str]
    """full path -> batch text for .bat files ('' for other files)."""
    env: dict[str, str]
    cwd: str
    run_program: Callable[[Invocation], int]
    delayed_default: bool = False
    path_programs: tuple[str, ...] = ("py", "python", "where", "schtasks", "powershell")
    errorlevel: int = 0
    invocations: list[Invocation] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    echo_on: bool = True

    def exists(self, path: str) -> bool:
        wanted = ntpath.normcase(ntpath.normpath(path))
        return any(ntpath.normcase(ntpath.normpath(p)) == wanted or
                   ntpath.normcase(ntpath.normpath(p)).startswith(wanted + "\\") for p in self.files)

    def full(self, path: str) -> str:
        path = path.strip('"')
        return ntpath.normpath(path if ntpath.isabs(path) else ntpath.join(self.cwd, path))


_OPERATORS = ("&&", "||", "&")


@dataclass
class _Block:
    commands: list  # list of (operator-before, node)


@dataclass
class _If:
    negate: bool
    condition: tuple[str, ...]
    body: object


class _BatchContext:
    def __init__(self, machine: Machine, path: str, args: str, frames: list[Frame]):
        self.m = machine
        self.path = path
        self.args = args
        self.frames = frames
        self.delayed = machine.delayed_default

    # ---- phase 1 -------------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        parts, current, quoted = [], "", False
        for char in self.args:
            if char == '"':
                quoted = not quoted
            if char in " \t,;=" and not quoted:
                if current:
                    parts.append(current)
                current = ""
                continue
            current += char
        if current:
            parts.append(current)
        return parts

    def percent(self, text: str) -> str:
        out, i = [], 0
        argv = [self.path, *self._argv()]
        while i < len(text):
            char = text[i]
            if char != "%":
                out.append(char)
                i += 1
                continue
            rest = text[i + 1:]
            if rest.startswith("%"):
                out.append("%")
                i += 2
                continue
            if rest.startswith("*"):
                out.append(self.args)
                i += 2
                continue
            match = re.match(r"~([a-z]*)([0-9])", rest)
            if match:
                value = argv[int(match.group(2))] if int(match.group(2)) < len(argv) else ""
                out.append(self._modify(value.strip('"'), match.group(1)))
                i += 1 + match.end()
                continue
            if rest[:1].isdigit():
                number = int(rest[0])
                out.append(argv[number] if number < len(argv) else "")
                i += 2
                continue
            end = rest.find("%")
            if end < 0:  # a lone percent sign is dropped in a batch file
                i += 1
                continue
            name = rest[:end]
            if ":" in name:
                raise NotModeled(f"%{name}% (substring / replace expansion)")
            out.append(self.variable(name))
            i += end + 2
        return "".join(out)

    def _modify(self, value: str, modifiers: str) -> str:
        if not modifiers:
            return value
        full = self.m.full(value)
        if modifiers == "dp":
            return ntpath.dirname(full) + "\\"
        if modifiers == "f":
            return full
        raise NotModeled(f"%~{modifiers}")

    def variable(self, name: str) -> str:
        upper = name.upper()
        for key, value in self.m.env.items():
            if key.upper() == upper:
                return value
        if upper == "CD":
            return self.m.cwd
        if upper == "ERRORLEVEL":
            return str(self.m.errorlevel)
        return ""

    # ---- phase 2 -------------------------------------------------------------------------------

    def read_command(self, lines: list[str], index: int):
        """Read one command (a block may span lines): phase 1 on every line first, then phase 2."""
        raw = lines[index]
        index += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith(":"):
            return None, index
        if re.match(r"@?rem(\s|$)", stripped, re.I):
            return None, index
        text = self.percent(raw)
        while True:
            try:
                node, rest = self.parse_sequence(text, 0, depth=0)
            except _NeedMore:
                if index >= len(lines):
                    raise CmdSyntaxError("unbalanced parenthesis at end of file") from None
                text += "\n" + self.percent(lines[index])
                index += 1
                continue
            if rest.strip():
                raise CmdSyntaxError(f"{rest.strip().split()[0]} was unexpected at this time.")
            return node, index

    def parse_sequence(self, text: str, pos: int, depth: int):
        commands = []
        operator = None
        while True:
            pos = _skip_blank(text, pos, newlines=depth > 0)
            if pos >= len(text):
                if depth:
                    raise _NeedMore
                break
            if text[pos] == ")" and depth:
                return _Block(commands), text[pos:]
            node, pos = self.parse_command(text, pos, depth)
            commands.append((operator, node))
            pos = _skip_blank(text, pos, newlines=False)
            if pos < len(text) and text[pos] == "\n":
                if not depth:
                    raise NotModeled("a newline outside a block")
                operator = "&"
                pos += 1
                continue
            for op in _OPERATORS:
                if text.startswith(op, pos):
                    operator = op
                    pos += len(op)
                    break
            else:
                if pos < len(text) and text[pos] == ")" and depth:
                    return _Block(commands), text[pos:]
                if pos < len(text) and text[pos] in "|<>":
                    raise NotModeled(f"{text[pos]} (pipes and redirection)")
                return _Block(commands), text[pos:]
        return _Block(commands), ""

    def parse_command(self, text: str, pos: int, depth: int):
        if text[pos] == "(":
            block, rest = self.parse_sequence(text, pos + 1, depth + 1)
            if not rest.startswith(")"):
                raise _NeedMore
            return block, len(text) - len(rest) + 1
        if re.match(r"@?if\s", text[pos:], re.I):
            return self.parse_if(text, pos + text[pos:].lower().index("if") + 2, depth)
        # a simple command: up to an unquoted, unescaped operator (or `)` inside a block)
        out, quoted, i = [], False, pos
        while i < len(text):
            char = text[i]
            if char == '"':
                quoted = not quoted
            elif not quoted and char == "^":
                if i + 1 < len(text):
                    out.append(text[i + 1])
                i += 2
                continue
            elif not quoted and (char in "&|<>\n" or (char == ")" and depth)):
                break
            out.append(char)
            i += 1
        return "".join(out), i  # trailing spaces kept: `set X=a & b` sets "a "

    def parse_if(self, text: str, pos: int, depth: int):
        tokens, pos = [], _skip_blank(text, pos, newlines=False)
        negate = False
        word, after = _token(text, pos)
        if word.lower() == "/i":
            raise NotModeled("if /i")
        if word.lower() == "not":
            negate, pos = True, _skip_blank(text, after, newlines=False)
            word, after = _token(text, pos)
        if word.lower() in ("exist", "defined", "errorlevel"):
            operand, after = _token(text, _skip_blank(text, after, newlines=False))
            tokens = [word.lower(), operand]
        else:
            left, after = _token(text, pos, stop_at_equals=True)
            after = _skip_blank(text, after, newlines=False)
            if not text.startswith("==", after):
                raise CmdSyntaxError(f"{text[after:].split()[0] if text[after:].split() else 'if'} was unexpected at this time.")
            right, after = _token(text, _skip_blank(text, after + 2, newlines=False))
            tokens = ["==", left, right]
        body, pos = self.parse_command(text, _skip_blank(text, after, newlines=False), depth)
        rest = text[_skip_blank(text, pos, newlines=False):]
        if re.match(r"else\b", rest, re.I):
            raise NotModeled("else")
        return _If(negate, tuple(tokens), body), pos

    # ---- execution -----------------------------------------------------------------------------

    def execute(self, node) -> None:
        if isinstance(node, _Block):
            for operator, child in node.commands:
                if operator == "&&" and self.m.errorlevel != 0:
                    continue
                if operator == "||" and self.m.errorlevel == 0:
                    continue
                self.execute(child)
            return
        if isinstance(node, _If):
            kind = node.condition[0]
            if kind == "exist":
                truth = self.m.exists(self.m.full(self.phase5(node.condition[1])))
            elif kind == "defined":
                truth = any(k.upper() == node.condition[1].upper() for k in self.m.env)
            elif kind == "errorlevel":
                truth = self.m.errorlevel >= int(node.condition[1])
            else:
                truth = self.phase5(node.condition[1]) == self.phase5(node.condition[2])
            if truth != node.negate:
                self.execute(node.body)
            return
        self.simple(self.phase5(node))

    def phase5(self, text: str) -> str:
        if not self.delayed or "!" not in text:
            return text
        out, i = [], 0
        while i < len(text):
            char = text[i]
            if char == "^":
                if i + 1 < len(text):
                    out.append(text[i + 1])
                i += 2
                continue
            if char == "!":
                end = text.find("!", i + 1)
                if end < 0:
                    i += 1  # a lone ! vanishes
                    continue
                out.append(self.variable(text[i + 1:end]))
                i = end + 1
                continue
            out.append(char)
            i += 1
        return "".join(out)

    def simple(self, command: str) -> None:
        command = command.lstrip(" \t")
        if command.startswith("@"):
            command = command[1:].lstrip()
        word, after = _token(command, 0)
        verb = word.lower()
        rest = command[after:].lstrip(" ")
        if verb not in ("set", "echo"):  # only these two keep trailing spaces
            rest = rest.rstrip(" ")
        if verb == "echo" or verb.startswith("echo."):
            if rest.lower() in ("off", "on"):
                self.m.echo_on = rest.lower() == "on"
            else:
                self.m.output.append(rest)
            return
        if verb in ("rem",):
            return
        if verb == "setlocal":
            self.frames.append(Frame(dict(self.m.env), self.delayed))
            option = rest.strip().lower()
            if option == "enabledelayedexpansion":
                self.delayed = True
            elif option == "disabledelayedexpansion":
                self.delayed = False
            elif option:
                raise NotModeled(f"setlocal {rest}")
            self.m.errorlevel = 0
            return
        if verb == "endlocal":
            if self.frames:
                frame = self.frames.pop()
                self.m.env, self.delayed = frame.env, frame.delayed
            return
        if verb == "set":
            self.set(rest)
            return
        if verb == "cd" or verb == "chdir":
            target = rest[3:] if rest.lower().startswith("/d ") else rest
            target = self.m.full(target.strip())
            if not self.m.exists(target):
                self.m.output.append("The system cannot find the path specified.")
                self.m.errorlevel = 1
                return
            self.m.cwd = target
            return
        if verb == "exit":
            if not rest.lower().startswith("/b"):
                raise NotModeled("exit without /b ends cmd.exe itself")
            code = rest[2:].strip()
            raise _Exit(int(code) if code else None)
        if verb == "goto":
            raise _Goto(rest.strip().lstrip(":").lower())
        if verb == "call":
            again = self.percent(rest)  # call expands percent signs a second time
            target, args_at = _token(again, 0)
            if target.startswith(":"):
                raise NotModeled("call :label")
            nested = _BatchContext(self.m, self.m.full(target), again[args_at:].lstrip(" "), [])
            nested.delayed = saved_delayed = self.delayed
            self.m.errorlevel = self.m.run_batch_in(nested)
            self.delayed = saved_delayed
            return
        program = word.strip('"')
        if "\\" in program or program.startswith("."):
            resolved = self.m.full(program)
            if not self.m.exists(resolved):
                self.m.output.append(f"'{program}' is not recognized as an internal or external command")
                self.m.errorlevel = 9009
                return
        elif self.m.exists(self.m.full(program)) and "." in program:  # cmd looks in the current folder first
            resolved = self.m.full(program)
        elif program.lower() in self.m.path_programs:
            resolved = program
        else:
            self.m.output.append(f"'{program}' is not recognized as an internal or external command")
            self.m.errorlevel = 9009
            return
        invocation = Invocation(resolved, rest, dict(self.m.env), self.m.cwd)
        self.m.invocations.append(invocation)
        self.m.errorlevel = self.m.run_program(invocation)

    def set(self, rest: str) -> None:
        if rest.startswith('"'):
            end = rest.rfind('"')
            body = rest[1:end] if end > 0 else rest[1:]
        else:
            body = rest
        if "=" not in body:
            raise NotModeled(f"set {rest}")
        name, value = body.split("=", 1)
        for key in list(self.m.env):
            if key.upper() == name.upper():
                del self.m.env[key]
        if value:
            self.m.env[name] = value


class _NeedMore(Exception):
    """The block is not closed yet: read the next line."""


def _skip_blank(text: str, pos: int, newlines: bool) -> int:
    while pos < len(text) and (text[pos] in " \t" or (newlines and text[pos] == "\n")):
        pos += 1
    return pos


def _token(text: str, pos: int, stop_at_equals: bool = False) -> tuple[str, int]:
    """A cmd token: up to an unquoted delimiter (space, tab, comma, semicolon; `=` for if's compare)."""
    out, quoted, i = [], False, pos
    while i < len(text):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and (char in " \t,;\n" or (stop_at_equals and char == "=")):
            break
        out.append(char)
        i += 1
    return "".join(out), i


def _run_batch_in(self: Machine, context: _BatchContext) -> int:
    """Run a called batch with its own context (its own %0, %1 ... and setlocal frames)."""
    text = next((t for p, t in self.files.items() if ntpath.normcase(p) == ntpath.normcase(context.path)), None)
    if not text:
        self.output.append("The system cannot find the path specified.")
        return 1
    lines = text.split("\r\n")
    labels = {line.strip()[1:].lower(): i for i, line in enumerate(lines) if line.strip().startswith(":")}
    index = 0
    try:
        while index < len(lines):
            block, index = context.read_command(lines, index)
            if block is None:
                continue
            try:
                context.execute(block)
            except _Goto as jump:
                if jump.label == "eof":
                    break
                if jump.label not in labels:
                    raise CmdSyntaxError(f"The system cannot find the batch label specified - {jump.label}") from None
                index = labels[jump.label] + 1
    except _Exit as stop:
        if stop.code is not None:
            self.errorlevel = stop.code
    if context.frames:  # implicit endlocal of every setlocal this batch left open
        self.env = context.frames[0].env
    return self.errorlevel


Machine.run_batch_in = _run_batch_in  # type: ignore[attr-defined]


def run(machine: Machine, batch: str, args: str = "") -> int:
    """`cmd /c "batch" args` on the machine: the batch's errorlevel (cmd's exit code)."""
    context = _BatchContext(machine, machine.full(batch), args, [])
    return machine.run_batch_in(context)  # type: ignore[attr-defined]


def windows_argv(command_line: str) -> list[str]:
    """Split an argument string as the Microsoft C runtime does (CommandLineToArgvW rules)."""
    args, current, in_quotes, backslashes, started = [], [], False, 0, False
    for char in command_line:
        if char == "\\":
            backslashes += 1
            started = True
            continue
        if char == '"':
            current.append("\\" * (backslashes // 2))
            if backslashes % 2:
                current.append('"')
            else:
                in_quotes = not in_quotes
            backslashes, started = 0, True
            continue
        current.append("\\" * backslashes)
        backslashes = 0
        if char in " \t" and not in_quotes:
            if started:
                args.append("".join(current))
            current, started = [], False
            continue
        current.append(char)
        started = True
    current.append("\\" * backslashes)
    if started:
        args.append("".join(current))
    return args
