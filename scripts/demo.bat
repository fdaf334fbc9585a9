@echo off
rem Command 1: set up and run the whole daily flow end to end on local sample data.
rem Works from any folder; returns run_flow.py's exit code (or the first failing step's).
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
call scripts\setup.bat || exit /b
if not defined DAGSTER_HOME set "DAGSTER_HOME=%CD%\dagster_home"
if not defined DEMO_DAYS set "DEMO_DAYS=14"
if not defined DEMO_ROWS_PER_DAY set "DEMO_ROWS_PER_DAY=2000"
echo ==^> generating sample data
".venv\Scripts\python.exe" scripts\generate_sample_data.py --days "%DEMO_DAYS%" --rows-per-day "%DEMO_ROWS_PER_DAY%" || exit /b
echo ==^> running the daily flow
".venv\Scripts\python.exe" scripts\run_flow.py %*
exit /b %ERRORLEVEL%
