@echo off
rem Check the pipeline's set-up on this PC: each line OK, PROBLEM (with the fix), WARNING or SKIPPED.
rem Run it first after a Windows update or when something looks wrong. Exit 0 = no PROBLEM.
rem Usage: scripts\doctor.bat [--port 3000] [--check NAME ...]   (works from any folder)
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" goto :no_venv
".venv\Scripts\python.exe" scripts\doctor.py %*
exit /b %ERRORLEVEL%

:no_venv
echo PROBLEM  python: no .venv in "%CD%" ^| fix: run scripts\setup.bat
exit /b 1
