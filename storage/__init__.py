"""Corral's storage: the database, its tables and migrations, and the stores on top."""
