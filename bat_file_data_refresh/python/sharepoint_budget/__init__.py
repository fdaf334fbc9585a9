"""SharePoint budget workbook -> long CSV files (contract section 4)."""
