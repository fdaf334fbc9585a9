# Remove the Task Scheduler task registered by scripts\register_task.ps1 (stops it first).
# Usage:  .\scripts\unregister_task.ps1 [-TaskName DailySalesDagster]
param(
    [string]$TaskName = "DailySalesDagster"
)
$ErrorActionPreference = "Stop"

$Task = Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
if ($null -eq $Task) {
    Write-Host "No task named '$TaskName'; nothing to do."
    exit 0
}
Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
Write-Host "Removed task '$TaskName'."
