"""Workers: provisioning with reservations, release, and reconciliation against the backends."""

from hodei.workers.provisioner import Attempt, NoProviderAvailable, Provisioned, Provisioner
from hodei.workers.reconciler import Reconciler
from hodei.workers.records import CapacityExhausted, IllegalTransition, Worker, WorkerRecords, WorkerState

__all__ = ["Attempt", "CapacityExhausted", "IllegalTransition", "NoProviderAvailable", "Provisioned", "Provisioner",
           "Reconciler", "Worker", "WorkerRecords", "WorkerState"]
