"""Plans and simulations: the daemon's own decisions (the chain, the capacity rules, the placement queue's
order) run against a private copy of the fleet, so nothing is provisioned.

``order`` is the queue order; ``view`` the private copy of a fleet and its slots; ``placement`` the queue
policy that places jobs on it; ``plan`` one batch now (``hodei plan``), with ``advice`` verified by
re-planning; ``simulate`` a trace in virtual time (``hodei simulate``), with ``trace`` its input and
``chart`` its picture.
"""
