@echo off
rem Start the Dagster server for the daily sales pipeline and keep it running.
rem Used by hand (double-click) and by scripts\register_task.bat; the Task Scheduler task itself
rem runs .venv\Scripts\python.exe scripts\supervisor.py directly (scripts\windows_task.py).
rem UI: http://127.0.0.1:3000 (set DAGSTER_PORT for another)   Logs: logs\supervisor.log and logs\dagster.log
rem Same as scripts/start.sh on Linux: the supervisor, workspace.yaml, the persistent home dagster_home\.
rem Safe in any folder (spaces, ( ) & ' ! and non-ASCII letters): no %%VAR%% inside a ( ) block,
rem every path quoted, delayed expansion off; tests/test_windows_scripts.py checks it with a model of cmd.
setlocal DisableDelayedExpansion
cd /d "%~dp0"
if not exist ".venv\Scripts\python.exe" goto :no_venv
if not defined DAGSTER_HOME set "DAGSTER_HOME=%CD%\dagster_home"
if not defined DAGSTER_PORT set "DAGSTER_PORT=3000"
".venv\Scripts\python.exe" scripts\supervisor.py --dagster-home "%DAGSTER_HOME%" --port "%DAGSTER_PORT%" %*
exit /b %ERRORLEVEL%

:no_venv
echo .venv not found in "%CD%": run scripts\setup.bat first (README.md).
exit /b 78
