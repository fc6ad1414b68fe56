"""Problems, not runs: a failure signature tracked across runs, with a state people can set.

A problem is what a run's failures have in common with earlier runs' (integration, target, phase, the
check and its cause class), read from what the run already computed — its diagnoses and its failing
records' checks — never judged again. Modules, one concept each:

- ``signature``  what a run shows: each failure's signature, its records affected and a few samples
- ``state``      a problem's state in words (open, acknowledged, muted, resolved, reopened) and a
                 person's changes to it (acknowledge, mute, unmute, resolve)
- ``track``      how a run changes the stored problems (new, known, escalated, reopened, resolved), and
                 the subscriber the front doors add to a run (never the engine)

The rows live in the run store (:mod:`bonzo_bulk.store.problems`, migration 9); reports say of each
failure whether it is a new or a known problem, and the monitor alerts per problem.
"""
