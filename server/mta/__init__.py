"""MTA adapters, chosen by `MTA_URL`."""

from server.mta.base import Mta


def make_mta(url: str) -> Mta:
    scheme = url.split("://", 1)[0].lower()
    if scheme == "simulator":
        from server.mta.simulator import SimulatorConfig, SimulatorMta

        return SimulatorMta(SimulatorConfig.from_url(url))
    if scheme == "capture":
        from server.mta.capture import CaptureMta

        return CaptureMta()
    raise ValueError(
        f"MTA_URL {url!r} is not supported: use simulator:// or capture:// (smtp:// comes with"
        " the real-MTA work)"
    )
