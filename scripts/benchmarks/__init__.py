"""The sections of ``scripts/bench.py``, a module each: (a) decode, (b) kpl, (c) end_to_end,
(d) planning, (e) latency, (f) sink. Each has ``run(repeat)``, prints its figures as it goes
and adds them to ``common.FIGURES`` for the table printed at the end."""
