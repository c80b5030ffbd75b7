"""MTA adapters, chosen by `MTA_URL`."""

from server.mta.base import Mta
from server.settings import Settings


def make_mta(settings: Settings) -> Mta:
    url = settings.mta_url
    scheme = url.split("://", 1)[0].lower()
    if scheme == "simulator":
        from server.mta.simulator import SimulatorConfig, SimulatorMta

        return SimulatorMta(SimulatorConfig.from_url(url))
    if scheme == "capture":
        from server.mta.capture import CaptureMta

        return CaptureMta()
    if scheme == "smtp":
        from server.mta.smtp import SmtpMta

        return SmtpMta.from_settings(settings)
    raise ValueError(f"MTA_URL {url!r} is not supported: use simulator://, capture:// or smtp://")
