"""The application layer: every entry point (the CLI, the gRPC API, the daemon) does what it does
through these services, and nothing below them.

One service per concern, each a plain class taking its collaborators explicitly:

* :class:`~hodei.services.providers.LocalProviders`: providers, their state and history;
* :class:`~hodei.services.selection.LocalSelection`: decisions, reports and explanations, each recorded;
* :class:`~hodei.services.workers.LocalWorkers`: provisioning, release and listing of workers.

:mod:`hodei.services.protocols` declares what the CLI asks of them; the CLI's ``--server`` mode
implements the same protocols over gRPC (:mod:`hodei.api.remote`).
"""
