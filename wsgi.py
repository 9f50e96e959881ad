"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from booking import create_app
from booking.web.garbage_collection import collect_less_while_serving

app = create_app()
collect_less_while_serving()
