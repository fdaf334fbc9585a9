@echo off
rem Start the Dagster server for the daily sales pipeline and keep it running.
rem Used by the Task Scheduler task (scripts\register_task.ps1) and by hand: double-click.
rem UI: http://127.0.0.1:3000   Logs: logs\supervisor.log and logs\dagster.log
setlocal
cd /d "%~dp0"
if not exist ".venv\Scripts\activate.bat" (
    echo .venv not found in %CD%: run the setup steps in README.md first.
    exit /b 78
)
call ".venv\Scripts\activate.bat"
python scripts\supervisor.py %*
exit /b %ERRORLEVEL%
