"""A local Microsoft Entra ID + Microsoft Graph emulator, served over HTTPS on loopback.

Used by the demo, the tests and the benchmarks; see `server.run_emulator` and
`python -m emulator --help`.
"""

from emulator.server import AppCredentials, Emulator, run_emulator

__all__ = ["AppCredentials", "Emulator", "run_emulator"]
