"""The doctor's Windows checks from what Windows' own tools print: the registered user, the task's
last result with its meaning, "Allow wake timers", console output in the OEM code page, and the
OneDrive / mapped-drive warnings. The tools' outputs below are in the shapes schtasks.exe,
powercfg.exe and whoami.exe print them (English and German Windows)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def doctor():
    from scripts import doctor as module

    return module


def _registered(doctor, user=r"PC\ana", logon="Password") -> dict[str, str]:
    from scripts import windows_task

    tasks = windows_task.build(windows_task.load_settings(), str(doctor.REPO_ROOT).replace("/", "\\"), user, logon)
    return {task["name"]: task["xml"] for task in tasks}


def _csv_row(last_result: str, run_as: str = r"PC\ana") -> str:
    fields = ["PC", r"\DailySalesDagster", "N/A", "Wird ausgeführt", "Nur interaktiv/Hintergrund",
              "07.12.2026 07:10:00", last_result, r"PC\ana", "python.exe", "C:\\p", "N/A", "Aktiviert",
              "Deaktiviert", "Nicht im Akkubetrieb starten", run_as, "Deaktiviert"]
    return ",".join(f'"{f}"' for f in fields) + "\r\n"


@pytest.mark.parametrize(("printed", "fine", "words"), [
    ("-2147023570", False, "bad password"),            # 0x8007052E, as schtasks prints it (signed)
    ("2147943726", False, "bad password"),              # the same, unsigned
    ("0x80070569", False, "Log on as a batch job"),     # hex, as the UI shows it
    ("-2147022987", False, "locked out"),               # 0x80070775
    ("267011", True, "has not run yet"),                # 0x41303
    ("267009", True, "running now"),
    ("-1073741510", True, "stopped"),                   # 0xC000013A
    ("78", False, "supervisor exited with code 78"),
    ("-2147216609", True, "already running"),            # 0x8004131F
])
def test_last_result_meanings(doctor, printed, fine, words):
    code = doctor.parse_last_result(printed)
    ok, meaning, fix = doctor.last_result_meaning(code, "DailySalesDagster", r"PC\ana")
    assert ok is fine and words in meaning
    assert fine or fix


def test_a_bad_password_is_a_problem_with_the_fix(doctor):
    csv = doctor.task_csv_fields(_csv_row("-2147023570"))
    xml = _registered(doctor)
    result = doctor.task_result(xml["DailySalesDagster"], xml["DailySalesDagster-Wake"], _settings(), csv, {r"PC\ana"})
    line = _line(doctor, result)
    assert line.startswith("PROBLEM  task: DailySalesDagster is registered, but its last result is 0x8007052E")
    assert "register_task.bat" in line and "S4U" in line


def test_the_batch_logon_right_names_the_user_and_the_policy(doctor):
    csv = doctor.task_csv_fields(_csv_row("-2147023511"))  # 0x80070569
    xml = _registered(doctor)
    line = _line(doctor, doctor.task_result(xml["DailySalesDagster"], xml["DailySalesDagster-Wake"], _settings(),
                                            csv, {r"PC\ana"}))
    assert r'"Log on as a batch job" right is missing for PC\ana' in line and "secpol.msc" in line


def test_a_task_an_admin_registered_for_themselves_is_a_problem(doctor):
    xml = _registered(doctor, user=r"RETAIL\it.admin")
    result = doctor.task_result(xml["DailySalesDagster"], xml["DailySalesDagster-Wake"], _settings(),
                                doctor.task_csv_fields(_csv_row("0")), {r"RETAIL\ana.maria", "ana.maria"})
    line = _line(doctor, result)
    assert "the task runs as RETAIL\\it.admin, not as you" in line and "logon trigger never fires" in line


def test_a_task_registered_by_sid_for_me_is_fine(doctor):
    sid = "S-1-5-21-1004336348-1177238915-682003330-512"
    xml = _registered(doctor, user=sid)
    result = doctor.task_result(xml["DailySalesDagster"], xml["DailySalesDagster-Wake"], _settings(),
                                doctor.task_csv_fields(_csv_row("267011")), {r"PC\ana", "ana", sid})
    assert result.status == "OK" and "has not run yet" in result.detail


def test_an_interactive_registration_runs_pythonw_and_passes(doctor):
    xml = _registered(doctor, logon="Interactive")
    result = doctor.task_result(xml["DailySalesDagster"], xml["DailySalesDagster-Wake"], _settings(), None, {r"PC\ana"})
    assert result.status == "OK", result.detail


POWERCFG_EN = """Power Scheme GUID: 381b4222-f694-41f0-9685-ff5bb260df2e  (Balanced)
  Subgroup GUID: 238c9fa8-0aad-41ed-83f4-97be242c8f20  (Sleep)
    GUID Alias: SUB_SLEEP
    Power Setting GUID: bd3b718a-0680-4d9d-8ab2-e1d2b4ac806d  (Allow wake timers)
      GUID Alias: RTCWAKE
      Possible Setting Index: 000
      Possible Setting Friendly Name: Disable
      Possible Setting Index: 001
      Possible Setting Friendly Name: Enable
      Possible Setting Index: 002
      Possible Setting Friendly Name: Important Wake Timers Only
    Current AC Power Setting Index: 0x{ac:08x}
    Current DC Power Setting Index: 0x{dc:08x}
"""
POWERCFG_DE = """GUID des Energieschemas: 381b4222-f694-41f0-9685-ff5bb260df2e  (Ausbalanciert)
  GUID der Untergruppe: 238c9fa8-0aad-41ed-83f4-97be242c8f20  (Energie sparen)
    Energieeinstellungs-GUID: bd3b718a-0680-4d9d-8ab2-e1d2b4ac806d  (Zeitgeber zur Aktivierung zulassen)
      Mögliche Einstellungsindex: 000
      Mögliche Einstellungsindex: 001
    Aktueller Wechselstrom-Einstellungsindex: 0x{ac:08x}
    Aktueller Gleichstrom-Einstellungsindex: 0x{dc:08x}
"""


@pytest.mark.parametrize("template", [POWERCFG_EN, POWERCFG_DE], ids=["en", "de"])
@pytest.mark.parametrize(("ac", "dc", "status"), [(1, 1, "OK"), (1, 0, "OK"), (0, 1, "PROBLEM"), (2, 2, "PROBLEM")])
def test_allow_wake_timers_from_powercfg(doctor, template, ac, dc, status):
    result = doctor.wake_timer_result(doctor.wake_timer_indices(template.format(ac=ac, dc=dc)))
    assert result.status == status
    if status == "PROBLEM":
        assert "powercfg /setacvalueindex SCHEME_CURRENT SUB_SLEEP RTCWAKE 1" in result.fix


def test_a_managed_power_plan_without_the_setting_is_skipped_not_guessed(doctor):
    assert doctor.wake_timer_result(doctor.wake_timer_indices("Invalid Parameters -- try \"/?\" for help")).status == "SKIPPED"


@pytest.mark.parametrize("encoding", ["cp850", "cp437", "utf-8", "utf-16", "utf-16-le"])
def test_console_output_is_decoded_whatever_code_page_the_tool_wrote(doctor, encoding):
    text = '<?xml version="1.0"?><Task><UserId>RETAIL\\seán.o\'brien</UserId><Description>Größe</Description></Task>'
    if encoding == "cp437":
        text = text.replace("ß", "ü")  # cp437 has no ß
    raw = text.encode(encoding)
    assert doctor.decode_console_output(raw, int(encoding[2:]) if encoding.startswith("cp") else 850) == text


def test_onedrive_or_a_mapped_drive_is_a_warning_not_a_problem(doctor, tmp_path, monkeypatch, capsys, isolated_env):
    monkeypatch.setenv("OneDrive", str(isolated_env))
    code = doctor.main(["--check", "locations"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"WARNING  locations: DATA_DIR {isolated_env.resolve()} is inside OneDrive" in out and "| fix:" in out


def _settings():
    from scripts import windows_task

    return windows_task.load_settings()


def _line(doctor, result) -> str:
    return result.line()
