"""The status page of ``hodei serve``: read-only HTML of the fleet, a provider, the recent decisions and
the replicas, on its own listener (``[ui] listen``). :mod:`hodei.ui.app` is the web application,
:mod:`hodei.ui.server` the part of the daemon's task group that serves it."""
