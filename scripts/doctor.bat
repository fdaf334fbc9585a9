@echo off
rem Check the pipeline's set-up on this PC: each line OK, PROBLEM (with the fix) or SKIPPED.
rem Run it first after a Windows update or when something looks wrong. Exit 0 = all OK.
rem Usage: scripts\doctor.bat [--port 3000] [--check NAME ...]
setlocal
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" (
    echo PROBLEM  python: no .venv in %CD% ^| fix: run scripts\setup.bat
    exit /b 1
)
".venv\Scripts\python.exe" scripts\doctor.py %*
exit /b %ERRORLEVEL%
