"""Scheduled agent tasks: which fire times are due (``plan``), firing one exactly once
(``runner``), keeping APScheduler's jobs in step with the database (``scheduler``), and
bringing team.yaml's schedules into the database (``reconcile``)."""
