# Remove the Task Scheduler tasks registered by scripts\register_task.ps1 (stops the server first).
# Usage (tasks you registered yourself need no elevation; an admin's registration does):
#   powershell -ExecutionPolicy Bypass -File .\scripts\unregister_task.ps1 [-TaskName DailySalesDagster]
param(
    [string]$TaskName = "DailySalesDagster"
)
$ErrorActionPreference = "Stop"

$Removed = 0
foreach ($Name in @($TaskName, "$TaskName-Wake")) {
    $Task = Get-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue
    if ($null -eq $Task) { continue }
    Stop-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue
    Unregister-ScheduledTask -TaskName $Name -Confirm:$false
    Write-Host "Removed task '$Name'."
    $Removed++
}
if ($Removed -eq 0) { Write-Host "No task named '$TaskName'; nothing to do." }
