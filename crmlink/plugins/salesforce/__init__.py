"""The salesforce connector (in progress)."""
