"""Channel adapters: one module per provider, the only place that knows its field names and
answer format. Each parses a provider request into a neutral event and renders the reply."""

AT_USSD = "at-ussd"
AT_SMS = "at-sms"
SMS_8X8 = "8x8-sms"
SMS_CHANNELS = frozenset({AT_SMS, SMS_8X8})  # a report by SMS: no consent to be contacted was asked
