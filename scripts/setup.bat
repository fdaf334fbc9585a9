@echo off
rem Shared set-up for demo.bat and test.bat: the venv, the locked packages, the dbt manifest.
rem Usage: scripts\setup.bat [dev]
setlocal
cd /d "%~dp0.."
rem Python 3.11 or newer, checked before anything is created or installed.
set "PY=python"
where py >nul 2>nul && set "PY=py -3"
if exist .venv\Scripts\python.exe set "PY=.venv\Scripts\python.exe"
%PY% -c "import sys; raise SystemExit(sys.version_info < (3, 11))" >nul 2>nul || (
  echo Python 3.11 or newer is needed ^(checked: %PY%^). Install it from python.org ^(tick "Add python.exe to PATH"^), 1>&2
  echo or delete a .venv made by an older Python, then run this again. 1>&2
  exit /b 78
)
if not exist .venv\Scripts\python.exe (
  echo ==^> creating .venv
  %PY% -m venv .venv || exit /b 1
)
set LOCK=
if "%~1"=="dev" set LOCK=--dev
rem requirements.lock (hashes, Linux and Windows) through uv, each phase timed: scripts\install_packages.py
.venv\Scripts\python.exe scripts\install_packages.py %LOCK% || exit /b
echo ==^> preparing the dbt manifest
.venv\Scripts\python.exe scripts\prepare_dbt.py || exit /b 1
endlocal
