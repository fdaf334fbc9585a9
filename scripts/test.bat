@echo off
rem Command 2: set up (venv, packages, dbt manifest, Azurite) and run the tests.
setlocal
cd /d "%~dp0.."
call scripts\setup.bat dev || exit /b 1
echo ==^> Azurite (Azure Storage emulator, from npm)
.venv\Scripts\python.exe scripts\ensure_azurite.py || exit /b 1
echo ==^> running the tests
.venv\Scripts\python.exe -m pytest %*
endlocal
