"""WSGI entry point: ``waitress-serve wsgi:application`` or any WSGI server."""

from hub.app import create_app

application = create_app()
