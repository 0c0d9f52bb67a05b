"""The hubspot connector (in progress)."""
