"""Emulated TP-Link Kasa plugs speaking the real wire protocol (TCP 9999 framing + UDP discovery).

    plug = EmulatedPlug("HS110v2", alias="washer", power=lambda t: 2000 if t < 60 else 1.5)
    emulator = Emulator()
    [port] = await emulator.start([plug])          # 127.0.0.1, OS-chosen port
    plug.relay_on = False; plug.hung = True        # change behaviour at any time
    await emulator.set_online(plug, False)         # refuse connections (same port when back)
    await emulator.stop()
"""

from plugwatch.emulator.models import MODELS
from plugwatch.emulator.plug import EmulatedOutlet, EmulatedPlug
from plugwatch.emulator.server import Emulator, raise_open_file_limit

__all__ = ["MODELS", "EmulatedOutlet", "EmulatedPlug", "Emulator", "raise_open_file_limit"]
