"""SharePoint Online through Microsoft Graph as an Entra ID app-only client."""
