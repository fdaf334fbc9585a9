# Register the Task Scheduler tasks that keep the daily sales pipeline's Dagster server running:
#   DailySalesDagster       scripts\supervisor.py at logon and every 5 minutes (a restart if it died;
#                           ignored while it runs), and at start-up when registered by an administrator;
#                           normal priority, no time limit.
#   DailySalesDagster-Wake  wakes the PC 5 minutes before the 07:15 morning refresh and keeps it awake.
# The settings live in scripts\task_settings.json; scripts\windows_task.py turns them into task XML.
#
# Run ONCE in the repo folder. A standard user registers for themselves (no start-up trigger):
#   powershell -ExecutionPolicy Bypass -File .\scripts\register_task.ps1
# An IT administrator adds the start-up trigger by running the same from an elevated PowerShell; the
# tasks are registered for the user signed in at the console (the analyst), not for the admin:
#   powershell -ExecutionPolicy Bypass -File .\scripts\register_task.ps1 [-User RETAIL\ana.maria]
# Where Group Policy forbids scripts (-ExecutionPolicy Bypass is then overridden): scripts\register_task.bat.
#
# -Logon Password     (default) asks for the Windows password of -User; Task Scheduler stores it (not
#                     this repo) so the server has the user's network credentials (proxy, UNC DATA_DIR),
#                     logged on or not. Needs the "Log on as a batch job" right (scripts\doctor.bat says).
# -Logon S4U          no stored password, runs logged on or not, local files only (no proxy login, no
#                     UNC DATA_DIR); a password change never breaks it.
# -Logon Interactive  only while the user is logged on, with no window (pythonw.exe). -Interactive is the same.
param(
    [string]$TaskName = "DailySalesDagster",
    [string]$User = "",
    [ValidateSet("Password", "S4U", "Interactive")]
    [string]$Logon = "Password",
    [switch]$Interactive
)
$ErrorActionPreference = "Stop"
if ($Interactive) { $Logon = "Interactive" }

$RepoRoot = Split-Path -Parent $PSScriptRoot
$Python = Join-Path $RepoRoot ".venv\Scripts\python.exe"
$Generator = Join-Path $PSScriptRoot "windows_task.py"
if (-not (Test-Path -LiteralPath $Python)) { throw "$Python not found: run scripts\setup.bat first." }

$Identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$Elevated = ([Security.Principal.WindowsPrincipal]$Identity).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
if (-not $User) {
    # The user at the console: when an admin elevates for the analyst, $env:USERNAME is the admin.
    $User = (Get-CimInstance -ClassName Win32_ComputerSystem -ErrorAction SilentlyContinue).UserName
    if (-not $User) { $User = "$env:USERDOMAIN\$env:USERNAME" }
}
if (-not $Elevated -and $User -ne $Identity.Name) {
    throw "Only an administrator may register tasks for another user ($User); you are $($Identity.Name). Run it elevated, or sign in as $User."
}

$OutDir = Join-Path $env:TEMP ("dailysales-task-" + [guid]::NewGuid().ToString("N"))
$GeneratorArgs = @($Generator, "--user", $User, "--task-name", $TaskName, "--out-dir", $OutDir, "--logon", $Logon)
if (-not $Elevated) {
    $GeneratorArgs += "--no-boot-trigger"
    if ($Logon -ne "Interactive") {
        Write-Host "Not elevated: no start-up trigger (an administrator may add it by running this elevated); the server starts at logon and within 5 minutes after."
    }
}
& $Python @GeneratorArgs
if ($LASTEXITCODE -ne 0) { throw "windows_task.py failed (exit $LASTEXITCODE)" }

try {
    $Password = $null
    if ($Logon -eq "Password") {
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
Write-Host "Pause it (e.g. to restore a backup) with:  scripts\pause_pipeline.bat   and back:  scripts\resume_pipeline.bat"
Write-Host "Check everything with:  scripts\doctor.bat"
