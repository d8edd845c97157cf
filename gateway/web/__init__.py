"""HTTP blueprints: provider callbacks under /at, health under /."""

WEBHOOK_BLUEPRINTS = ("at", "sms8x8")  # the aggregators' callbacks: Africa's Talking and 8x8
