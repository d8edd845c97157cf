"""The bare Flask baseline: one fixed `CON` screen, no Redis, no database. Served by the same
server with the same settings as the gateway, it is the ceiling the gateway's own work is
measured against."""
from flask import Flask, Response

SCREEN = "CON Hotline TPPO\n1 Lapor\n2 Nomor bantuan\n3 Tanda TPPO\n00 Keluar"


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/at/ussd")
    def ussd() -> Response:
        return Response(SCREEN, mimetype="text/plain")

    return app


app = create_app()
