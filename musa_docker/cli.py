"""The front door: `musa-docker [OPTIONS] TASK [FLAGS]`, and `invoke TASK [FLAGS]` in the repo root.

The program takes only its own options (`--help`, `--version`, `--list`, `--debug`, `--config
FILE`, completion) and each task only its own flags, from the task registry (options/flags.py).
Anything else is one `error:` line naming it, with the closest real flag or task when one is near:
an abbreviation, a typo or another tool's habit never starts anything. What the command line gave
goes, with the environment and the config files, to the one cascade of values (options/cascade.py),
then to the task's command (commands.run); the project's errors become one `error:` line and an exit
code here, and nowhere else.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from . import __version__, commands
from .errors import MusaDockerError, Terminated
from .options import cascade, flags
from .util import closest

USAGE = 2          # the exit code of a command line that cannot be run
WIDTH = 80

PROGRAM_OPTIONS = (
    ("-h, --help", "show this help, or a task's with `TASK --help` or `help TASK`"),
    ("-V, --version", "print the version"),
    ("-l, --list", "list the tasks"),
    ("-d, --debug", "show a traceback with an error (also MUSA_DOCKER_DEBUG=1)"),
    ("-f, --config FILE", "read this YAML config file first, then musa_docker.yaml in the working dir, "
                          "~/.musa_docker.yaml, /etc/musa_docker.yaml"),
    ("--print-completion-script bash", "print the bash completion script: "
                                       "source <(musa-docker --print-completion-script bash)"),
)
_PROGRAM_SPELLINGS = ("-h", "--help", "-V", "--version", "-l", "--list", "-d", "--debug", "-f", "--config",
                      "--print-completion-script", "--complete")


class UsageError(Exception):
    """A command line that cannot be run: the message, and the help it points to."""

    def __init__(self, message: str, helped: str = ""):
        super().__init__(message)
        self.helped = helped


# --- parsing a task's flags ----------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised for the front door to tell, never printed and exited."""

    def error(self, message: str):
        raise argparse.ArgumentError(None, message)


class _Once(argparse.Action):
    """A flag that takes one value: given twice is an error that says so."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = getattr(namespace, self.dest)
        if seen is not None:
            raise UsageError(f"{option_string} is given twice ({seen!r}, then {values!r}): give it once")
        setattr(namespace, self.dest, values)


class _OnOff(argparse.Action):
    """An on/off flag and its other spelling (`--no-cache` / `--cache`): the last one given wins,
    so the command line can undo the config file; not given, it stays None for the cascade."""

    def __init__(self, option_strings, dest, on: Sequence[str] = (), **kwargs):
        self.on = tuple(on)
        super().__init__(option_strings, dest, nargs=0, default=None, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string in self.on)


def task_parser(spec: flags.TaskSpec, prog: str) -> _Parser:
    """The parser of one task, made from its registry entry, with help grouped for people."""
    follow = flags.words_of(spec.typed)
    words = f" [{spec.positional.upper()}]" if spec.positional else \
        f" {'|'.join(follow)}" if spec.needs_word else f" [{'|'.join(follow)}]" if follow else ""
    parser = _Parser(prog=f"{prog} {spec.typed}", description=spec.summary, add_help=False, allow_abbrev=False,
                     formatter_class=_formatter, usage=f"{prog} {spec.typed}{words} [FLAGS]")
    groups = _groups(spec, parser)
    for row in spec.rows:
        group = groups[_group_of(spec, row)]
        if row.on_off:
            group.add_argument(*row.spellings, row.opposite, dest=row.name, action=_OnOff, on=row.spellings,
                               help=row.help)
        elif row.repeatable:
            group.add_argument(*row.spellings, dest=row.name, action="append", default=None,
                               metavar=row.placeholder, help=row.help)
        else:
            group.add_argument(*row.spellings, dest=row.name, action=_Once, default=None,
                               metavar=row.placeholder, help=row.help)
    groups["help"].add_argument("-h", "--help", action="store_true", dest="_help", help="show this help")
    return parser


class _Help(argparse.HelpFormatter):
    """argparse's help at 80 columns, never breaking a word at its hyphen (`--no-deps`)."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return _Help(prog, width=WIDTH, max_help_position=30)


# Help's groups of flags, in order: key -> title ("{task}" is the task's name).
_GROUPS = {"required": "required", "options": "{task} flags", "MUSA stack": "MUSA stack", "build": "build flags",
           "engine and builder": "engine and builder", "network": "network", "output": "output",
           "help": "help"}


def _groups(spec: flags.TaskSpec, parser) -> Dict[str, argparse._ArgumentGroup]:
    return {key: parser.add_argument_group(title.format(task=spec.name)) for key, title in _GROUPS.items()}


def _group_of(spec: flags.TaskSpec, row: flags.Flag) -> str:
    if "(required" in row.help:
        return "required"
    if row in flags.VENDOR or row in flags.MUSA_STACK or row.name in ("gpu_arch", "pins") and spec.builds:
        return "MUSA stack"
    if row in flags.COMMON or row.name == "docker_host":
        if row.name in flags.NETWORK:
            return "network"
        if row.name in flags.ENGINE:
            return "engine and builder"
        if row.name in flags.OUTPUT and spec.builds:
            return "output"
        return "build" if spec.builds else "options"
    return "options"


def parse_task(spec: flags.TaskSpec, argv: Sequence[str], prog: str) -> Optional[Dict[str, object]]:
    """The flags a task was given (None where one was not), or None when it asked for --help (printed).
    Raises UsageError."""
    parser = task_parser(spec, prog)
    helped = f"{prog} {spec.typed} --help"
    try:
        namespace, extra = parser.parse_known_args(list(argv))
    except UsageError as err:
        raise UsageError(str(err), helped) from None
    except argparse.ArgumentError as err:
        raise UsageError(_argparse_problem(str(err), spec), helped) from None
    if namespace._help:
        sys.stdout.write(parser.format_help())
        return None
    if spec.positional and extra and not extra[0].startswith("-") and getattr(namespace, spec.positional) is None:
        setattr(namespace, spec.positional, extra.pop(0))     # `sbom IMAGE` as `sbom -i IMAGE`
    for word in extra:
        if word.startswith("-"):
            flag = word.split("=", 1)[0]
            raise UsageError(f"{spec.typed} has no flag {flag}{_closest(flag, _spellings(spec))}", helped)
        raise UsageError(f"{spec.typed} takes no argument {word!r}, and no task has that name", helped)
    given = vars(namespace)
    given.pop("_help")
    return {k: (v if v is not None else ([] if spec.row(k).repeatable else None)) for k, v in given.items()}


def _argparse_problem(message: str, spec: flags.TaskSpec) -> str:
    """argparse's own words about a flag, as ours: `--tag needs a value`."""
    if "expected one argument" in message and message.startswith("argument "):
        first = message[len("argument "):].split(":", 1)[0].split("/")
        long = next((s for s in first if s.startswith("--")), first[0])
        row = next((r for r in spec.rows if long in r.spellings), None)
        return f"{row.spelled if row else long} needs a value"
    return message


def _spellings(spec: flags.TaskSpec) -> List[str]:
    out = []
    for row in spec.rows:
        out += list(row.spellings) + ([row.opposite] if row.opposite else [])
    return out + ["--help"]


def _closest(word: str, choices: Sequence[str]) -> str:
    """` (did you mean --dry-run?)` when a real choice is near, a prefix of one included."""
    close = closest(word, choices, cutoff=0.75)
    return f" (did you mean {close}?)" if close else ""


# --- the program ---------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None, prog: str = "musa-docker") -> int:
    """Run the command line `argv` (sys.argv[1:] when None); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv, prog)
    except UsageError as err:
        helped = err.helped or f"{prog} --help"
        sys.stderr.write(f"error: {err}: see `{helped}`\n")
        return USAGE
    except BrokenPipeError:
        # the reader went away (`| head`): end quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: List[str], prog: str) -> int:
    debug = bool(os.environ.get("MUSA_DOCKER_DEBUG"))
    config: Optional[str] = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        word, _, value = argv[i].partition("=")
        if word in ("-h", "--help"):
            sys.stdout.write(program_help(prog))
            return 0
        if word in ("-V", "--version"):
            sys.stdout.write(f"musa-docker {__version__}\n")
            return 0
        if word in ("-l", "--list"):
            sys.stdout.write(task_list())
            return 0
        if word in ("-d", "--debug"):
            debug = True
        elif word in ("-f", "--config"):
            if not value:
                i += 1
                if i >= len(argv) or not argv[i]:
                    raise UsageError(f"{word} needs a value: the YAML config file")
                value = argv[i]
            config = value
        elif word == "--print-completion-script":
            shell = value or (argv[i + 1] if i + 1 < len(argv) else "")
            if shell != "bash":
                raise UsageError(f"--print-completion-script {shell or '(none)'}: only bash is supported")
            sys.stdout.write(completion_script(prog))
            return 0
        elif word == "--complete":
            line = argv[i + 1:]
            line = line[1:] if line[:1] == ["--"] else line     # only the separator: a typed `--` stays
            sys.stdout.write(complete(line[1:]))
            return 0
        else:
            raise UsageError(f"{prog} has no option {word}{_closest(word, _PROGRAM_SPELLINGS)}; "
                             "a task's flags go after its name")
        i += 1
    if i >= len(argv):
        sys.stdout.write(program_help(prog))
        return 0
    task, rest = argv[i], argv[i + 1:]
    if task == "help":
        return _help(rest, prog)
    spec = flags.TASKS.get(task)
    if spec is None:
        hint = _closest(task, list(flags.TASKS))
        raise UsageError(f"no task named {task!r}{hint} (`{prog} --list` lists them)")
    spec, rest = _follow(spec, rest, prog)
    given = parse_task(spec, rest, prog)
    if given is None:
        return 0
    return boundary(lambda: _run(spec, given, config), debug)


def _follow(spec: flags.TaskSpec, rest: List[str], prog: str) -> tuple:
    """The spec the rest of the line is parsed with, and that rest: the one a word after the task's
    name chooses (flags.WORDS: `cache ls`, `bundle verify`, `lock build-base`), else the task's own."""
    chosen = flags.WORDS.get((spec.name, rest[0])) if rest else None
    if chosen is not None:
        return chosen, rest[1:]
    if not spec.needs_word or (rest and rest[0] in ("-h", "--help")):
        return spec, rest
    words = flags.words_of(spec.name)
    helped, choices = f"{prog} {spec.name} --help", " or ".join(words)
    if not rest or rest[0].startswith("-"):
        raise UsageError(f"{spec.name} needs an action first: {choices} (e.g. `{prog} {spec.name} "
                         f"{words[0]}`)", helped)
    raise UsageError(f"{spec.name} has no action {rest[0]!r}{_closest(rest[0], words)}: choose {choices}", helped)


def _run(spec: flags.TaskSpec, given: Dict[str, object], config: Optional[str]):
    files = cascade.config_files(Path(config) if config else None, Path.cwd(), os.environ)
    if spec.name.startswith("lock "):
        # each value from its own task's cascade: the build task's flags from its config section
        # and variables, as that build would take them; -o and --update from lock's
        task, own = spec.name.split()[1], flags.lock_own(spec)
        mine = {k: v for k, v in given.items() if k in own}
        built = {k: v for k, v in given.items() if k not in own}
        return commands.run("lock", cascade.collect("lock", mine, os.environ, files), os.environ,
                            build_task=task, build=cascade.collect(task, built, os.environ, files))
    how = {"action": spec.word} if spec.word else {}
    return commands.run(spec.name, cascade.collect(spec.name, given, os.environ, files), os.environ, **how)


def _help(rest: List[str], prog: str) -> int:
    if not rest:
        sys.stdout.write(program_help(prog))
        return 0
    spec = flags.TASKS.get(rest[0])
    if spec is None:
        raise UsageError(f"no task named {rest[0]!r}{_closest(rest[0], list(flags.TASKS))} "
                         f"(`{prog} --list` lists them)")
    spec = flags.WORDS.get((spec.name, rest[1]), spec) if rest[1:2] else spec
    sys.stdout.write(task_parser(spec, prog).format_help())
    return 0


def program_help(prog: str) -> str:
    lines = [f"usage: {prog} [OPTIONS] TASK [FLAGS]", "",
             "Build the Docker images torch_musa is developed and shipped in.", "", "tasks:"]
    lines += _rows((spec.name, spec.summary) for spec in flags.TASKS.values())
    lines += ["", "options:"]
    lines += _rows(PROGRAM_OPTIONS)
    lines += [""] + textwrap.wrap(
        f"`{prog} TASK --help` (or `{prog} help TASK`) shows a task's flags. Every flag can also come from "
        "MUSA_DOCKER_<TASK>_<FLAG>, MUSA_DOCKER_<FLAG> or the config file: see docs/config-and-pins.md.",
        WIDTH, break_on_hyphens=False)
    return "\n".join(lines) + "\n"


def task_list() -> str:
    return "tasks:\n" + "\n".join(_rows((s.name, s.summary) for s in flags.TASKS.values())) + "\n"


def _rows(pairs) -> List[str]:
    pairs = list(pairs)
    width = min(max(len(a) for a, _ in pairs), 30) + 4
    out = []
    for name, text in pairs:
        wrapped = textwrap.wrap(text, WIDTH - width) or [""]
        first = f"  {name}".ljust(width)
        if len(first) > width:
            out.append(f"  {name}")
            first = " " * width
        out.append(first + wrapped[0])
        out += [" " * width + line for line in wrapped[1:]]
    return out


# --- completion ----------------------------------------------------------------------------------

def completion_script(prog: str) -> str:
    return f"""# bash completion for {prog}: source <({prog} --print-completion-script bash)
_musa_docker() {{
    local IFS=$'\\n'
    COMPREPLY=( $(compgen -W "$({prog} --complete -- "${{COMP_WORDS[@]:0:COMP_CWORD+1}}")" -- "${{COMP_WORDS[COMP_CWORD]}}") )
}}
complete -F _musa_docker -o default {prog}
"""


def complete(words: List[str]) -> str:
    """The candidates at the end of `words` (the command line after the program's name): the tasks,
    or the flags of the task named; the shell keeps those that start with what is typed."""
    at = next((i for i, w in enumerate(words[:-1]) if w in flags.TASKS), None)
    if at is None:
        choices = list(flags.TASKS) + ["help"] + [s for s in _PROGRAM_SPELLINGS if s.startswith("--")]
    elif at == len(words) - 2:   # the word right after the task's name
        spec = flags.TASKS[words[at]]
        choices = flags.words_of(spec.name) + ([] if spec.needs_word else _spellings(spec))
    else:
        choices = _spellings(flags.WORDS.get((words[at], words[at + 1]), flags.TASKS[words[at]]))
    return "".join(c + "\n" for c in choices)


# --- the boundary --------------------------------------------------------------------------------

def _terminate(signum, frame):
    raise Terminated()


def boundary(call: Callable[[], object], debug: bool = False) -> int:
    """Run a command; a MusaDockerError becomes one `error: ...` line on stderr and its exit code.
    SIGTERM (what CI sends on cancel) unwinds like Ctrl-C: the same cleanup runs."""
    main_thread = threading.current_thread() is threading.main_thread()   # only it may set handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        code = call()
    except MusaDockerError as err:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {err}\n")
        return err.exit_code
    except Terminated:
        sys.stderr.write("error: terminated\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was tagged\n")
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else 0


def run() -> None:
    """The `musa-docker` script."""
    sys.exit(main())

