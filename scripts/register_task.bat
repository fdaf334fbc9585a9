@echo off
rem Register the Task Scheduler tasks without PowerShell (for a Group Policy that forbids scripts):
rem the same task XML as register_task.ps1, handed to %SystemRoot%\System32\schtasks.exe /Create /XML.
rem Usage: scripts\register_task.bat [--user DOMAIN\user] [--logon Password^|S4U^|Interactive]
rem   Standard user: registers for yourself, no start-up trigger. Elevated (an IT admin): adds the start-up
rem   trigger and registers for the user signed in at the console unless --user says otherwise.
rem   Password logon: schtasks asks for the password ("Please enter the run as password"); it is never
rem   on a command line. docs/operations.md, "The scheduled tasks".
setlocal DisableDelayedExpansion
cd /d "%~dp0.."
if not exist ".venv\Scripts\python.exe" goto :no_venv
".venv\Scripts\python.exe" scripts\windows_task.py --register %*
exit /b %ERRORLEVEL%

:no_venv
echo .venv not found in "%CD%": run scripts\setup.bat first.
exit /b 78
