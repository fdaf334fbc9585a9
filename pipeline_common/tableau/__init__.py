"""Tableau Server / Tableau Cloud through tableauserverclient: the one package the exporter (publishing)
and the freshness alerts (data quality warnings) share.

- `session`: the settings (contract section 1, the Default site included), one signed-in session with
  the retry and error rules, and the log guard that keeps the PAT secret out of every record;
- `lock`: the cross-process lock every sign-in holds, because Tableau allows one session per personal
  access token (a second sign-in with the same PAT ends the first session);
- `publish`: publish a .hyper as a data source (Overwrite);
- `warnings`: the pipeline's own STALE data quality warning (Data Management feature), kept by the
  server version's rules, never touching anyone else's warnings.
"""
