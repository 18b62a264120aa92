"""The service's one MQTT connection (client.py) and its settings (settings.py).

    from plugwatch.mqtt.client import client_for
    client = client_for(config.mqtt)   # plugwatch/status as its availability when publishing

Nothing is imported here, so that the config (which needs only settings.py) does not load
asyncio and paho-mqtt: `plugwatch status` stays fast.
"""
