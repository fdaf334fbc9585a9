@echo off
rem Shared set-up for demo.bat and test.bat: the venv, the pinned packages, the dbt manifest.
rem Usage: scripts\setup.bat [dev]   (works from any folder; returns the failing step's exit code)
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if exist ".venv\Scripts\python.exe" goto :venv_ready
echo ==^> creating .venv
py -3.11 -m venv .venv || python -m venv .venv || exit /b
".venv\Scripts\python.exe" -m pip install --quiet --upgrade pip || exit /b
:venv_ready
rem Before pip: a path too long for Windows, a repo in OneDrive or on a mapped drive, a server
rem still running from this .venv (its loaded .pyd files would half-upgrade it): said now, not mid-install.
".venv\Scripts\python.exe" scripts\check_install_path.py || exit /b
set "REQ=requirements.txt"
if "%~1"=="dev" set "REQ=requirements-dev.txt"
echo ==^> installing %REQ%
".venv\Scripts\python.exe" -m pip install --quiet --disable-pip-version-check -r "%REQ%" || exit /b
rem setuptools warns about every editable install ("Editable installation ... !!"): nothing to act on.
set "PYTHONWARNINGS=ignore"
".venv\Scripts\python.exe" -m pip install --quiet --disable-pip-version-check --no-deps -e . || exit /b
set "PYTHONWARNINGS="
echo ==^> preparing the dbt manifest
".venv\Scripts\python.exe" scripts\prepare_dbt.py
exit /b %ERRORLEVEL%
