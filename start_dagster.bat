@echo off
rem Start the Dagster server for the daily sales pipeline and keep it running.
rem Used by the Task Scheduler task (scripts\register_task.ps1) and by hand: double-click.
rem UI: http://127.0.0.1:3000 (set DAGSTER_PORT for another)   Logs: logs\supervisor.log and logs\dagster.log
rem Same as scripts/start.sh on Linux: the supervisor, workspace.yaml, the persistent home dagster_home\.
setlocal
cd /d "%~dp0"
if not exist ".venv\Scripts\activate.bat" (
    echo .venv not found in %CD%: run the setup steps in README.md first.
    exit /b 78
)
call ".venv\Scripts\activate.bat"
if "%DAGSTER_HOME%"=="" set "DAGSTER_HOME=%CD%\dagster_home"
if "%DAGSTER_PORT%"=="" set "DAGSTER_PORT=3000"
python scripts\supervisor.py --dagster-home "%DAGSTER_HOME%" --port %DAGSTER_PORT% %*
exit /b %ERRORLEVEL%
