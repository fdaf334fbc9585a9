#Requires -RunAsAdministrator
# Register the Task Scheduler tasks that keep the daily sales pipeline's Dagster server running:
#   DailySalesDagster       scripts\supervisor.py at start-up, at logon and every 5 minutes (a restart
#                           if it died; ignored while it runs), normal priority, no time limit, with
#                           the user's network credentials (proxy, UNC DATA_DIR).
#   DailySalesDagster-Wake  wakes the PC 5 minutes before the 07:15 morning refresh and keeps it awake.
# The settings live in scripts\task_settings.json; scripts\windows_task.py turns them into task XML.
#
# Run ONCE, from an ELEVATED PowerShell (right-click > Run as administrator), in the repo folder:
#   powershell -ExecutionPolicy Bypass -File .\scripts\register_task.ps1
# It asks for the Windows password of the current user: Task Scheduler stores it (not this repo) to
# run the server while nobody is logged on. Where policy forbids stored passwords, add -Interactive:
# the server then runs only while the user is logged on (no start-up trigger).
param(
    [string]$TaskName = "DailySalesDagster",
    [switch]$Interactive
)
$ErrorActionPreference = "Stop"

$RepoRoot = Split-Path -Parent $PSScriptRoot
$Python = Join-Path $RepoRoot ".venv\Scripts\python.exe"
$Generator = Join-Path $PSScriptRoot "windows_task.py"
if (-not (Test-Path -LiteralPath $Python)) { throw "$Python not found: run scripts\setup.bat first." }
$User = "$env:USERDOMAIN\$env:USERNAME"

$OutDir = Join-Path $env:TEMP ("dailysales-task-" + [guid]::NewGuid().ToString("N"))
$GeneratorArgs = @($Generator, "--user", $User, "--task-name", $TaskName, "--out-dir", $OutDir)
if ($Interactive) { $GeneratorArgs += "--interactive" }
& $Python @GeneratorArgs
if ($LASTEXITCODE -ne 0) { throw "windows_task.py failed (exit $LASTEXITCODE)" }

try {
    $Password = $null
    if (-not $Interactive) {
        $Credential = Get-Credential -UserName $User -Message "Windows password of $User (stored by Task Scheduler to run the pipeline with network access)"
        $Password = $Credential.GetNetworkCredential().Password
    }
    $Tasks = Get-Content -LiteralPath (Join-Path $OutDir "tasks.json") -Raw -Encoding UTF8 | ConvertFrom-Json
    foreach ($Task in $Tasks) {
        $Xml = Get-Content -LiteralPath $Task.xml -Raw -Encoding UTF8
        if ($Password) {
            Register-ScheduledTask -TaskName $Task.name -Xml $Xml -User $User -Password $Password -Force | Out-Null
        } else {
            Register-ScheduledTask -TaskName $Task.name -Xml $Xml -Force | Out-Null
        }
        Write-Host "Registered task '$($Task.name)': $($Task.summary)."
    }
} finally {
    Remove-Item -LiteralPath $OutDir -Recurse -Force -ErrorAction SilentlyContinue
}
Write-Host "Start it now with:  Start-ScheduledTask -TaskName $TaskName"
Write-Host "Stop it (the whole process tree) with:  Stop-ScheduledTask -TaskName $TaskName"
Write-Host "Check everything with:  scripts\doctor.bat"
