@echo off
rem Command 1: set up and run the whole daily flow end to end on local sample data.
setlocal
cd /d "%~dp0.."
call scripts\setup.bat || exit /b 1
if "%DAGSTER_HOME%"=="" set DAGSTER_HOME=%CD%\dagster_home
if "%DEMO_DAYS%"=="" set DEMO_DAYS=14
if "%DEMO_ROWS_PER_DAY%"=="" set DEMO_ROWS_PER_DAY=2000
echo ==^> generating sample data
.venv\Scripts\python.exe scripts\generate_sample_data.py --days %DEMO_DAYS% --rows-per-day %DEMO_ROWS_PER_DAY% || exit /b 1
echo ==^> running the daily flow
.venv\Scripts\python.exe scripts\run_flow.py %* || exit /b 1
endlocal
