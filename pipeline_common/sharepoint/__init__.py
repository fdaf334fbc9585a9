"""SharePoint Online through Microsoft Graph as a Microsoft Entra ID app-only client (contract section 1),
one module per concern: `settings.py` (the variable group, checked before any network call),
`certificates.py` (the certificate credential), `signin.py` (msal token, one client per configuration),
`graph.py` (Graph calls with retries; site and library), `workbook.py` (the budget workbook's eTag for
the sensor, and its download for the ingest).
"""
