"""km's command line."""
