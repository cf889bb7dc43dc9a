"""Host workflows over the link, the registry, the matcher and the ledger (docs/host.md).

    from glint.workflows import HostSession, provision
    with HostSession(home) as host, open_scanner(url) as sc:
        provision(host.registry, sc, label="desk-1")
        enroll_from_scanner(host, sc, "acme:BAG-1", captures=3)
        out = host.scan_and_process(sc, item="acme:BAG-1")   # verify; item=None identifies

The custody lifecycle (intake, transfer, service, rental, retire): glint.workflows.lifecycle.
"""

from glint.workflows.enroll import EnrollOutcome, enroll_from_scanner
from glint.workflows.provision import Provisioned, provision
from glint.workflows.scan import HostSession, ScanOutcome, acquire

__all__ = ["HostSession", "ScanOutcome", "acquire", "provision", "Provisioned", "enroll_from_scanner",
           "EnrollOutcome"]
