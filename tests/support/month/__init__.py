"""The simulated month of issue 9: a seeded scenario (:mod:`.scenario`), run on the real bot
and server (:mod:`.world`) and through the manual process it replaces (:mod:`.manual`),
measured the same way (:mod:`.figures`). ``bench/month.py`` runs 30 days;
``tests/month/test_three_days.py`` runs three with the same checks."""
