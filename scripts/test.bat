@echo off
rem Command 2: set up (venv, packages, dbt manifest, Azurite) and run the tests.
rem The UI screenshot test finds a Chromium-family browser like on Linux: CHROMIUM=path, else
rem chromium/chrome/msedge on PATH, else Chrome or Edge in Program Files (Edge ships with Windows).
setlocal
cd /d "%~dp0.."
call scripts\setup.bat dev || exit /b 1
echo ==^> Azurite (Azure Storage emulator, from npm)
.venv\Scripts\python.exe scripts\dev\ensure_azurite.py || exit /b 1
echo ==^> browser for the UI screenshot test
.venv\Scripts\python.exe -c "from tests.plugins.browser import HOW_TO_GET_ONE, find_chromium; b = find_chromium(); print(b or 'WARNING: ' + HOW_TO_GET_ONE)"
echo ==^> running the tests
.venv\Scripts\python.exe -m pytest %*
endlocal
