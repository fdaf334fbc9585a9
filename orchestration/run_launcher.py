"""Dagster's default run launcher (a process per run, started by the code server) that records on
each run the host it executes on, before the run's worker starts.

Configured in the desktop's dagster.yaml and in the home scripts/serve.py writes:

    run_launcher:
      module: orchestration.run_launcher
      class: HostRecordingRunLauncher

Tags: `retail_sales/host` (orchestration.hosts.host_identity(): DAGSTER_HOST_ID or the host name)
and `retail_sales/code_server` (the gRPC address of the code server that starts the worker; the
worker runs on that server's machine, which serve.py and `dagster dev` always keep on this host).
Re-executions get their own tags when launched, whatever their parent carried.
"""

from __future__ import annotations

from dagster._core.launcher.base import LaunchRunContext, ResumeRunContext
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from orchestration.hosts import CODE_SERVER_TAG, HOST_TAG, host_identity


def _code_server(context: LaunchRunContext | ResumeRunContext) -> str:
    origin = context.dagster_run.remote_job_origin
    if origin is None:
        return "in-process"
    location = origin.repository_origin.code_location_origin
    host = getattr(location, "host", None)
    port = getattr(location, "port", None) or getattr(location, "socket", None)
    return f"{host}:{port}" if host else type(location).__name__


class HostRecordingRunLauncher(DefaultRunLauncher):
    def _record_host(self, context: LaunchRunContext | ResumeRunContext) -> None:
        self._instance.add_run_tags(
            context.dagster_run.run_id, {HOST_TAG: host_identity(), CODE_SERVER_TAG: _code_server(context)}
        )

    def launch_run(self, context: LaunchRunContext) -> None:
        self._record_host(context)
        super().launch_run(context)

    def resume_run(self, context: ResumeRunContext) -> None:
        self._record_host(context)
        super().resume_run(context)
