"""Plugs that report over MQTT through the service's one MqttClient: Tasmota, Shelly Gen2+ and
zigbee2mqtt (docs/mqtt.md). Each module is one family's topics and payloads; base.py is what
they share (availability, staleness, validation, bad-message lines)."""
