"""Every .bat works from any folder and from a repo path with spaces, `(`, `)`, `&`, `'`, `!`, `^`,
`%` and non-ASCII letters, calls `.venv\\Scripts\\python.exe` directly and returns Python's exit code.

The .bat files run under tests/plugins/cmd_model.py, a model of cmd.exe's parsing phases for the
constructs they use (its docstring says why a model, and what it covers); each program a .bat
starts is recorded with its argument string, split as the C runtime splits it. The same checks run
against the files as they were before issue 27 (tests/fixtures/bat_before_issue_27/) and fail
there, for the reasons the issue names.
"""

from __future__ import annotations

import ntpath
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.cmd_model import CmdSyntaxError, Invocation, Machine, run, windows_argv

REPO = Path(__file__).resolve().parents[1]
OLD = REPO / "tests" / "fixtures" / "bat_before_issue_27"
BATS = {"start_dagster.bat": "", "doctor.bat": "scripts", "demo.bat": "scripts", "setup.bat": "scripts",
        "test.bat": "scripts", "register_task.bat": "scripts", "pause_pipeline.bat": "scripts",
        "resume_pipeline.bat": "scripts", "windows_acceptance.bat": "scripts"}
THIN = {  # .bat -> the Python command it runs in front of the user's arguments
    "register_task.bat": ["scripts\\windows_task.py", "--register"],
    "pause_pipeline.bat": ["scripts\\pipeline_control.py", "pause"],
    "resume_pipeline.bat": ["scripts\\pipeline_control.py", "resume"],
    "windows_acceptance.bat": ["scripts\\windows_acceptance.py"],
}
ISSUE_PATH = r"C:\Users\Seán O'Brien\OneDrive - Retail (UK) & Co\pipeline (prod)!"
START_FOLDER = r"C:\Windows\System32"

# A Windows folder name: no <>:"/\|?* and no trailing space or dot; the characters cmd treats
# specially are drawn often.
NAME_CHARS = st.sampled_from(list("abcXYZ019 -_.()&'!^%;,=éñüøß中") + ["Ω"])
FOLDER = st.text(NAME_CHARS, min_size=1, max_size=12).map(lambda s: s.rstrip(" .")).filter(bool)
REPO_PATHS = st.lists(FOLDER, min_size=1, max_size=4).map(lambda parts: "C:\\" + "\\".join(parts))


def _bat_text(name: str, old: bool) -> str:
    path = (OLD / name) if old and (OLD / name).exists() else (REPO / BATS[name] / name)
    return path.read_bytes().decode("ascii")


def machine(repo: str, codes: dict[str, int] | None = None, old: bool = False, delayed: bool = False,
            env: dict[str, str] | None = None) -> Machine:
    """A PC with the repo at `repo`, its .venv and scripts; programs answer with `codes` by script."""
    files = {ntpath.join(repo, BATS[name], name): _bat_text(name, old) for name in BATS}
    for relative in (r".venv\Scripts\python.exe", r"scripts\supervisor.py", r"scripts\doctor.py",
                     r"scripts\run_flow.py", r"scripts\generate_sample_data.py", r"requirements.txt"):
        files[ntpath.join(repo, relative)] = ""
    answers = codes or {}

    def answer(invocation: Invocation) -> int:
        argv = windows_argv(invocation.arguments)
        key = " ".join(argv[:2]) if argv[:1] == ["-m"] else (argv[0] if argv else "")
        return answers.get(key, 0)

    return Machine(files=files, env={"SystemRoot": r"C:\Windows", **(env or {})}, cwd=START_FOLDER,
                   run_program=answer, delayed_default=delayed)


def pythons(pc: Machine, repo: str) -> list[list[str]]:
    """argv (after python.exe) of every program started; each must be the repo's venv Python, in the repo."""
    venv_python = ntpath.join(repo, r".venv\Scripts\python.exe")
    for invocation in pc.invocations:
        assert invocation.program == venv_python, (invocation.program, pc.output)
        assert invocation.cwd == repo
    return [windows_argv(i.arguments) for i in pc.invocations]


def run_bat(pc: Machine, repo: str, name: str, args: str = "") -> int:
    # cmd /c "<full path of the .bat>" args: how Explorer, Task Scheduler and a prompt elsewhere start it
    return run(pc, ntpath.join(repo, BATS[name], name), args)


SETUP_STEPS = [["-c"], ["scripts\\check_install_path.py"], ["scripts\\install_packages.py"],
               ["scripts\\prepare_dbt.py"]]


def _starts_with(argv: list[str], prefix: list[str]) -> bool:
    return argv[: len(prefix)] == prefix


CHECKS: dict[str, Callable[[Machine, str, int], None]] = {}


def check(name: str):
    def register(function):
        CHECKS[name] = function
        return function
    return register


@check("start_dagster.bat")
def _start(pc: Machine, repo: str, code: int) -> None:
    pc.env.pop("DAGSTER_HOME", None)
    assert run_bat(pc, repo, "start_dagster.bat", "--max-restarts 3") == code
    assert pythons(pc, repo) == [["scripts\\supervisor.py", "--dagster-home", repo + "\\dagster_home",
                                  "--port", "3000", "--max-restarts", "3"]]


@check("doctor.bat")
def _doctor(pc: Machine, repo: str, code: int) -> None:
    assert run_bat(pc, repo, "doctor.bat", "--check task long_paths") == code
    assert pythons(pc, repo) == [["scripts\\doctor.py", "--check", "task", "long_paths"]]


@check("demo.bat")
def _demo(pc: Machine, repo: str, code: int) -> None:
    assert run_bat(pc, repo, "demo.bat", "--as-of 2026-11-30") == code
    argv = pythons(pc, repo)
    assert argv[-2] == ["scripts\\generate_sample_data.py", "--days", "14", "--rows-per-day", "2000"]
    assert argv[-1] == ["scripts\\run_flow.py", "--as-of", "2026-11-30"]
    assert pc.invocations[-1].env["DAGSTER_HOME"] == repo + "\\dagster_home"


@check("setup.bat")
def _setup(pc: Machine, repo: str, code: int) -> None:
    assert run_bat(pc, repo, "setup.bat", "dev") == code
    argv = pythons(pc, repo)
    assert len(argv) == len(SETUP_STEPS) and all(_starts_with(a, p) for a, p in zip(argv, SETUP_STEPS)), argv
    assert argv[2][-1] == "--dev"


@check("test.bat")
def _test(pc: Machine, repo: str, code: int) -> None:
    assert run_bat(pc, repo, "test.bat", "-k warehouse -x") == code
    assert pythons(pc, repo)[-1] == ["-m", "pytest", "-k", "warehouse", "-x"]


def _thin(name: str) -> Callable[[Machine, str, int], None]:
    def checked(pc: Machine, repo: str, code: int) -> None:
        assert run_bat(pc, repo, name, '--user "RETAIL\\Seán O\'Brien" --logon S4U') == code
        assert pythons(pc, repo) == [[*THIN[name], "--user", "RETAIL\\Seán O'Brien", "--logon", "S4U"]]
    return checked


for _name in THIN:
    CHECKS[_name] = _thin(_name)

LAST_STEP = {"start_dagster.bat": "scripts\\supervisor.py", "doctor.bat": "scripts\\doctor.py",
             "demo.bat": "scripts\\run_flow.py", "setup.bat": "scripts\\prepare_dbt.py", "test.bat": "-m pytest",
             **{name: argv[0] for name, argv in THIN.items()}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repo=REPO_PATHS, delayed=st.booleans(), code=st.sampled_from([0, 1, 65, 74, 75, 78]))
@pytest.mark.parametrize("name", sorted(BATS))
def test_each_bat_runs_the_venv_python_from_any_folder_and_returns_its_exit_code(name, repo, delayed, code):
    """Class: every repo path Windows allows, with or without the registry's delayed expansion,
    started from another folder; the last Python step's exit code is the .bat's exit code."""
    pc = machine(repo, {LAST_STEP[name]: code}, delayed=delayed)
    CHECKS[name](pc, repo, code)


@pytest.mark.parametrize("name", sorted(BATS))
def test_the_issue_path_works(name):
    pc = machine(ISSUE_PATH, {LAST_STEP[name]: 75})
    CHECKS[name](pc, ISSUE_PATH, 75)


@pytest.mark.parametrize("name", ["demo.bat", "setup.bat", "test.bat"])
def test_a_failing_step_stops_the_bat_with_that_steps_exit_code(name):
    pc = machine(ISSUE_PATH, {"scripts\\check_install_path.py": 74})
    assert run_bat(pc, ISSUE_PATH, name, "dev" if name == "setup.bat" else "") == 74
    started = [windows_argv(i.arguments)[0] for i in pc.invocations]
    assert [step for step in started if step != "-c"] == ["scripts\\check_install_path.py"]  # -c: the version check


def test_a_dagster_home_set_to_an_awkward_path_reaches_the_supervisor_whole():
    home = r"D:\Dagster (prod) & co\it's home!"
    pc = machine(ISSUE_PATH, env={"DAGSTER_HOME": home})
    assert run_bat(pc, ISSUE_PATH, "start_dagster.bat") == 0
    assert pythons(pc, ISSUE_PATH)[0][1:3] == ["--dagster-home", home]


def test_without_a_venv_start_says_so_and_exits_78():
    pc = machine(ISSUE_PATH)
    del pc.files[ntpath.join(ISSUE_PATH, r".venv\Scripts\python.exe")]
    assert run_bat(pc, ISSUE_PATH, "start_dagster.bat") == 78
    assert pc.invocations == []
    assert pc.output == [f'.venv not found in "{ISSUE_PATH}": run scripts\\setup.bat first (README.md).']


# ---- the same checks on the files before issue 27 fail, for the issue's reasons -----------------

def test_before_the_fix_a_close_paren_in_the_path_broke_start_and_doctor():
    """%CD% expanded inside the `if (...)` block: the path's `)` closed it."""
    for name in ("start_dagster.bat", "doctor.bat"):
        pc = machine(r"C:\data\pipeline (prod)", old=True)
        with pytest.raises(CmdSyntaxError, match="was unexpected at this time"):
            run_bat(pc, r"C:\data\pipeline (prod)", name)
    # With `) & Co` the block closes, the rest of the line runs as a command, and the block's
    # `exit /b 78` is no longer inside the if: the server never starts, whatever the venv.
    pc = machine(ISSUE_PATH, old=True)
    pc.files[ISSUE_PATH + r"\.venv\Scripts\activate.bat"] = "@echo off\r\n"
    assert run_bat(pc, ISSUE_PATH, "start_dagster.bat") == 78
    assert pc.invocations == []
    assert "'Co\\pipeline' is not recognized as an internal or external command" in pc.output


def test_before_the_fix_an_ampersand_cut_the_demos_dagster_home():
    pc = machine(r"C:\Users\ana\Retail & Co\pipeline", old=True)
    with pytest.raises(AssertionError):
        _demo(pc, r"C:\Users\ana\Retail & Co\pipeline", 0)
    flows = [i for i in pc.invocations if "run_flow.py" in i.arguments]
    assert flows and flows[0].env["DAGSTER_HOME"] == "C:\\Users\\ana\\Retail "  # the home the UI never shows


def test_before_the_fix_start_ran_whatever_python_was_on_path_after_activate():
    pc = machine(r"C:\pipelines\daily-sales", old=True)
    pc.files[r"C:\pipelines\daily-sales\.venv\Scripts\activate.bat"] = "@echo off\r\n"
    run_bat(pc, r"C:\pipelines\daily-sales", "start_dagster.bat")
    assert [i.program for i in pc.invocations] == ["python"]  # not the repo's .venv\Scripts\python.exe


@pytest.mark.parametrize("name", ["start_dagster.bat", "doctor.bat", "demo.bat"])
def test_the_checks_fail_on_the_old_files_the_issue_names(name):
    """(The old setup.bat and test.bat were path-safe already: they only gained the checks before pip
    and `exit /b` with the failing step's code.)"""
    failures = 0
    for repo in (ISSUE_PATH, r"C:\Users\ana\Retail & Co\pipeline", r"C:\data\pipeline (prod)"):
        pc = machine(repo, {LAST_STEP[name]: 75}, old=True)
        try:
            CHECKS[name](pc, repo, 75)
        except (AssertionError, CmdSyntaxError):
            failures += 1
    assert failures, f"the old {name} passes: the checks would not catch its faults"


# ---- the model against cmd behaviour documented elsewhere ----------------------------------------

def _script(text: str, env: dict[str, str] | None = None, delayed: bool = False) -> Machine:
    pc = Machine(files={r"C:\t\x.bat": text.replace("\n", "\r\n"), r"C:\t\prog.exe": ""},
                 env=dict(env or {}), cwd=r"C:\t", run_program=lambda invocation: 0, delayed_default=delayed)
    run(pc, r"C:\t\x.bat")
    return pc


def test_model_the_classic_program_files_x86_error():
    """`if ... ( echo %PATH% )` with "C:\\Program Files (x86)\\Microsoft ..." on PATH: the famous
    "\\Microsoft was unexpected at this time."."""
    with pytest.raises(CmdSyntaxError, match=r"^\\Microsoft was unexpected at this time\.$"):
        _script("@echo off\nif 1==1 (\n  echo %P%\n)\n", {"P": r"C:\Program Files (x86)\Microsoft SQL"})


def test_model_percent_expansion_happens_before_the_block_runs():
    pc = _script('@echo off\nset "A=old"\nif 1==1 (\n  set "A=new"\n  echo %A%\n)\necho %A%\n')
    assert pc.output == ["old", "new"]


def test_model_delayed_expansion_eats_exclamation_marks_even_in_quotes():
    assert _script('@echo off\necho "Hello!"\n', delayed=True).output == ['"Hello"']
    assert _script('@echo off\necho "Hello!"\n', delayed=False).output == ['"Hello!"']


def test_model_an_unquoted_ampersand_in_a_value_starts_a_second_command():
    pc = _script("@echo off\nset X=%V%\n", {"V": r"a & prog.exe b"})
    assert pc.env["X"] == "a " and [i.program for i in pc.invocations] == [r"C:\t\prog.exe"]
