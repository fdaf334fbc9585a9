@echo off
rem The acceptance checklist of docs\operations.md as automated steps; writes one PASS/FAIL report file
rem (logs\windows_acceptance_<PC>_<time>.txt) to attach to the ticket. Exit 0 = no step failed.
rem As the analyst (standard user):  scripts\windows_acceptance.bat
rem As an IT admin, elevated, registering the tasks for the analyst signed in at the console first:
rem   scripts\windows_acceptance.bat --register [--logon Password^|S4U^|Interactive]
rem Options: --steps NAME ... / --skip NAME ... (see docs\operations.md, "The acceptance script").
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" goto :no_venv
".venv\Scripts\python.exe" scripts\windows_acceptance.py %*
exit /b %ERRORLEVEL%

:no_venv
echo FAIL     setup: no .venv in "%CD%" ^| what to do: run scripts\setup.bat
exit /b 1
