# Register a Windows Task Scheduler task that runs start_dagster.bat at start-up and at logon,
# restarts it when it fails and never stops it for running too long.
# Usage (PowerShell, as the user the pipeline runs as):  .\scripts\register_task.ps1 [-TaskName DailySalesDagster]
param(
    [string]$TaskName = "DailySalesDagster"
)
$ErrorActionPreference = "Stop"

$RepoRoot = Split-Path -Parent $PSScriptRoot
$StartScript = Join-Path $RepoRoot "start_dagster.bat"
if (-not (Test-Path $StartScript)) { throw "start_dagster.bat not found in $RepoRoot" }

$Action = New-ScheduledTaskAction -Execute "cmd.exe" -Argument "/c `"$StartScript`"" -WorkingDirectory $RepoRoot
$Triggers = @(
    (New-ScheduledTaskTrigger -AtStartup),
    (New-ScheduledTaskTrigger -AtLogOn -User "$env:USERDOMAIN\$env:USERNAME")
)
# ExecutionTimeLimit 0 = no limit; restart every minute on failure, up to 999 times;
# IgnoreNew: the second trigger (logon after start-up) does not start a second supervisor.
$Settings = New-ScheduledTaskSettingsSet `
    -ExecutionTimeLimit ([TimeSpan]::Zero) `
    -RestartInterval (New-TimeSpan -Minutes 1) `
    -RestartCount 999 `
    -MultipleInstances IgnoreNew `
    -StartWhenAvailable `
    -AllowStartIfOnBatteries `
    -DontStopIfGoingOnBatteries
$Principal = New-ScheduledTaskPrincipal -UserId "$env:USERDOMAIN\$env:USERNAME" -LogonType S4U -RunLevel Limited

Register-ScheduledTask -TaskName $TaskName -Action $Action -Trigger $Triggers -Settings $Settings `
    -Principal $Principal -Description "Dagster server for the daily sales pipeline ($RepoRoot)" -Force | Out-Null
Write-Host "Registered task '$TaskName': runs $StartScript at start-up and logon."
Write-Host "Start it now with: Start-ScheduledTask -TaskName $TaskName"
