"""The console's pages, one module per kind of work."""
