@echo off
rem Resume after scripts\pause_pipeline.bat: enables both scheduled tasks, starts the server task and
rem waits until the UI answers. Usage: scripts\resume_pipeline.bat [--port 3000]   (exit 0 = running)
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" goto :no_venv
".venv\Scripts\python.exe" scripts\pipeline_control.py resume %*
exit /b %ERRORLEVEL%

:no_venv
echo .venv not found in "%CD%": run scripts\setup.bat first.
exit /b 78
