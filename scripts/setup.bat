@echo off
rem Shared set-up for demo.bat and test.bat: the venv, the pinned packages, the dbt manifest.
rem Usage: scripts\setup.bat [dev]
setlocal
cd /d "%~dp0.."
if not exist .venv\Scripts\python.exe (
  echo ==^> creating .venv
  py -3.11 -m venv .venv || python -m venv .venv || exit /b 1
  .venv\Scripts\python.exe -m pip install --quiet --upgrade pip
)
set REQ=requirements.txt
if "%~1"=="dev" set REQ=requirements-dev.txt
echo ==^> installing %REQ%
.venv\Scripts\python.exe -m pip install --quiet --disable-pip-version-check -r %REQ% || exit /b 1
rem setuptools warns about every editable install ("Editable installation ... !!"): nothing to act on.
set PYTHONWARNINGS=ignore
.venv\Scripts\python.exe -m pip install --quiet --disable-pip-version-check --no-deps -e . || exit /b 1
set PYTHONWARNINGS=
echo ==^> preparing the dbt manifest
.venv\Scripts\python.exe scripts\prepare_dbt.py || exit /b 1
endlocal
