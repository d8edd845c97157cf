"""Cases: a filed report, the agencies it is routed to, their alerts and escalation."""
