"""TP-Link Kasa plugs on the legacy XOR protocol (TCP 9999): wire format, connection, driver."""
