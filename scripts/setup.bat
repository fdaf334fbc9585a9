@echo off
rem Shared set-up for demo.bat and test.bat: the venv, the locked packages, the dbt manifest.
rem Usage: scripts\setup.bat [dev]   (works from any folder; returns the failing step's exit code)
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if exist ".venv\Scripts\python.exe" goto :venv_ready
rem Python 3.11 or newer, checked before anything is created or installed.
python -c "import sys; raise SystemExit(sys.version_info < (3, 11))" && goto :create_venv
echo Python 3.11 or newer is needed ^(checked: python on PATH^). Install it from python.org, tick "Add python.exe to PATH", then run this again.
exit /b 78
:create_venv
echo ==^> creating .venv
python -m venv .venv || exit /b
:venv_ready
".venv\Scripts\python.exe" -c "import sys; raise SystemExit(sys.version_info < (3, 11))" || goto :old_venv
rem Before installing: a path too long for Windows, a repo in OneDrive or on a mapped drive, a server
rem still running from this .venv (its loaded .pyd files would half-upgrade it): said now, not mid-install.
".venv\Scripts\python.exe" scripts\check_install_path.py || exit /b
set "LOCK="
if "%~1"=="dev" set "LOCK=--dev"
rem requirements.lock (hashes, Linux and Windows) through uv, each phase timed: scripts\install_packages.py
".venv\Scripts\python.exe" scripts\install_packages.py %LOCK% || exit /b
echo ==^> preparing the dbt manifest
".venv\Scripts\python.exe" scripts\prepare_dbt.py
exit /b %ERRORLEVEL%

:old_venv
echo .venv was made by a Python older than 3.11: delete the .venv folder, install Python 3.11 or newer, then run this again.
exit /b 78
