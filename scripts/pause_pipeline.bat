@echo off
rem Pause the pipeline for maintenance (e.g. copying a backup over analytics.duckdb): disables both
rem scheduled tasks (the 5-minute trigger and the wake task would start the server again), stops the
rem server and everything it started, and confirms the warehouse is free. Undo: scripts\resume_pipeline.bat
rem Usage: scripts\pause_pipeline.bat [--dagster-home PATH]   (exit 0 = paused and free)
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" goto :no_venv
".venv\Scripts\python.exe" scripts\pipeline_control.py pause %*
exit /b %ERRORLEVEL%

:no_venv
echo .venv not found in "%CD%": run scripts\setup.bat first.
exit /b 78
